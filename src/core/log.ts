/**
 * Human-facing output on stderr: warnings (each once per process), step progress and debug
 * lines. stdout belongs to results (and is pure JSON under --json).
 */
import { isKilnError } from './errors.js';

export const debugEnabled = (): boolean => process.env.KILN_DEBUG === '1';

const warned = new Set<string>();

/** Prints `warning: …` on stderr the first time `key` is seen in this process. */
export function warnOnce(key: string, message: string): void {
  if (warned.has(key)) return;
  warned.add(key);
  process.stderr.write(`kiln: warning: ${message}\n`);
}

export function debug(message: string): void {
  if (debugEnabled()) process.stderr.write(`kiln: debug: ${message}\n`);
}

/** The one line (or stack, under KILN_DEBUG=1) a CLI user sees for an error. */
export function formatError(err: unknown): string {
  if (debugEnabled() && err instanceof Error && err.stack) {
    const cause = err.cause instanceof Error && err.cause.stack ? `\ncaused by: ${err.cause.stack}` : '';
    return `${err.stack}${cause}`;
  }
  if (isKilnError(err)) return `kiln: error ${err.code}: ${err.message}`;
  const message = err instanceof Error ? err.message : String(err);
  return `kiln: error KILN_ERR_INTERNAL: ${message} (run with KILN_DEBUG=1 for a stack trace and report it)`;
}

/** Reports the steps of long work on a TTY; silent when stderr is piped or `quiet` is set. */
export class Progress {
  private readonly enabled: boolean;
  private started = performance.now();

  constructor(options: { quiet?: boolean } = {}) {
    this.enabled = !options.quiet && process.stderr.isTTY === true;
  }

  step(label: string): void {
    if (!this.enabled) return;
    this.started = performance.now();
    process.stderr.write(`  … ${label}\r`);
  }

  done(label: string): void {
    if (!this.enabled) return;
    const ms = performance.now() - this.started;
    process.stderr.write(`\x1b[2K  ✓ ${label} (${formatMs(ms)})\n`);
  }

  /** A bar with rate and ETA for loops over many items. */
  tick(done: number, total: number, unit: string): void {
    if (!this.enabled || total <= 0) return;
    const seconds = (performance.now() - this.started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const eta = rate > 0 ? (total - done) / rate : 0;
    const width = 24;
    const filled = Math.round((done / total) * width);
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    process.stderr.write(`\x1b[2K  ${bar} ${done}/${total} ${unit} ${rate.toFixed(0)}/s eta ${eta.toFixed(0)} s\r`);
    if (done === total) process.stderr.write('\x1b[2K');
  }
}

export function formatMs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
