/**
 * One writer per repository: a lock file created with O_EXCL under `<cache>/.locks/models--ORG--NAME/`
 * (beside Python's own per-blob locks). Node has no flock(2), so the holder proves it is alive
 * by refreshing the file's mtime; a lock whose holder died (same host, pid gone) or stopped
 * refreshing is taken over. A second kiln pulling the same model waits, then finds the files in place.
 */
import { mkdir, open, readFile, rm, stat, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { KilnError } from '../core/errors.js';

const HEARTBEAT_MS = 2_000;
/** A lock not refreshed for this long belongs to a process that is gone or hung. */
const STALE_MS = 30_000;
const POLL_MS = 100;

export interface LockOptions {
  /** Longest wait for another holder, in ms. @defaultValue 600000 */
  timeoutMs?: number;
  /** Called once when the lock is held by someone else and this process starts waiting. */
  onWait?: () => void;
}

interface Holder {
  pid: number;
  host: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function isStale(path: string): Promise<boolean> {
  try {
    const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    if (Date.now() - info.mtimeMs > STALE_MS) return true;
    const holder = JSON.parse(text) as Partial<Holder>;
    return holder.host === hostname() && typeof holder.pid === 'number' && !alive(holder.pid);
  } catch {
    // Unreadable or half-written by a holder that is starting: not stale yet (mtime decides later).
    return false;
  }
}

/** Runs `work` while holding the lock at `path`; the lock goes when `work` settles. */
export async function withLock<T>(path: string, work: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 600_000;
  const started = Date.now();
  let waiting = false;
  try {
    await mkdir(dirname(path), { recursive: true });
  } catch (err) {
    throw new KilnError(
      'KILN_ERR_HUB_CACHE_IO',
      { path: dirname(path), reason: (err as Error).message },
      { cause: err },
    );
  }
  for (;;) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(JSON.stringify({ pid: process.pid, host: hostname(), at: new Date().toISOString() }));
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new KilnError('KILN_ERR_HUB_CACHE_IO', { path, reason: (err as Error).message }, { cause: err });
    }
    if (await isStale(path)) {
      await rm(path, { force: true });
      continue;
    }
    if (Date.now() - started > timeoutMs)
      throw new KilnError('KILN_ERR_HUB_LOCKED', { lock: path, seconds: Math.round((Date.now() - started) / 1000) });
    if (!waiting) {
      waiting = true;
      options.onWait?.();
    }
    await delay(POLL_MS);
  }
  const heartbeat = setInterval(() => {
    const now = new Date();
    utimes(path, now, now).catch(() => undefined);
  }, HEARTBEAT_MS);
  heartbeat.unref();
  try {
    return await work();
  } finally {
    clearInterval(heartbeat);
    await rm(path, { force: true });
  }
}
