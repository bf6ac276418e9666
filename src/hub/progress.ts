/**
 * Download progress on stderr: on a TTY one bar per file (bytes, rate, ETA) redrawn in place;
 * piped, one line per finished file; nothing when quiet (`--json`).
 */
import { formatBytes } from '../core/log.js';

export interface DownloadProgress {
  /** A file starts downloading; `from` bytes were already there (a resumed download). */
  start(file: string, size: number, from: number): void;
  /** `done` bytes of `file` are on disk. */
  advance(file: string, done: number): void;
  finish(file: string, size: number, ms: number): void;
}

export const SILENT_PROGRESS: DownloadProgress = { start() {}, advance() {}, finish() {} };

const REDRAW_MS = 100;

function rate(bytes: number, ms: number): string {
  return ms > 0 ? `${formatBytes((bytes * 1000) / ms)}/s` : '';
}

/** Progress for `repo`'s files on `stream` (stderr): a bar on a TTY, lines otherwise, nothing when quiet. */
export function downloadProgress(
  repo: string,
  options: { quiet: boolean; stream?: NodeJS.WriteStream },
): DownloadProgress {
  const stream = options.stream ?? process.stderr;
  if (options.quiet) return SILENT_PROGRESS;
  if (!stream.isTTY)
    return {
      start() {},
      advance() {},
      finish(file, size, ms) {
        stream.write(`kiln: downloaded ${repo} ${file} (${formatBytes(size)} in ${(ms / 1000).toFixed(1)} s)\n`);
      },
    };
  const state = new Map<string, { size: number; from: number; started: number; drawn: number }>();
  return {
    start(file, size, from) {
      state.set(file, { size, from, started: performance.now(), drawn: 0 });
    },
    advance(file, done) {
      const s = state.get(file);
      if (!s) return;
      const now = performance.now();
      if (now - s.drawn < REDRAW_MS) return;
      s.drawn = now;
      const ms = now - s.started;
      const speed = ms > 0 ? ((done - s.from) * 1000) / ms : 0;
      const eta = speed > 0 ? Math.ceil((s.size - done) / speed) : 0;
      const width = 24;
      const filled = s.size > 0 ? Math.min(width, Math.round((done / s.size) * width)) : width;
      stream.write(
        `\x1b[2K  ${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${file} ${formatBytes(done)}/${formatBytes(s.size)} ${rate(done - s.from, ms)} eta ${eta} s\r`,
      );
    },
    finish(file, size, ms) {
      state.delete(file);
      stream.write(`\x1b[2K  ✓ ${repo} ${file} ${formatBytes(size)} (${rate(size, ms) || 'cached'})\n`);
    },
  };
}
