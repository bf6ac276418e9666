/** How long one request may take (what it may carry is src/tasks/limits.ts). */
import { KilnError } from '../core/errors.js';

/**
 * Runs `work` (a request's handler) within what is left of the request's `timeoutMs` after the
 * `elapsedMs` since it arrived: 504 when that passes first. `work` gets the deadline as a
 * `performance.now()` value, for the scheduler to drop its inputs still queued then (a batch
 * already running finishes).
 */
export async function runWithin<R>(
  timeoutMs: number | null,
  elapsedMs: number,
  work: (deadline: number | undefined) => Promise<R>,
): Promise<R> {
  if (timeoutMs === null) return work(undefined);
  const left = Math.max(0, timeoutMs - elapsedMs);
  const running = work(performance.now() + left);
  // The abandoned work may still fail later (e.g. a queue-full rejection); nobody awaits it then.
  running.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new KilnError('KILN_ERR_HTTP_TIMEOUT', { limit: timeoutMs })), left);
  });
  try {
    return await Promise.race([running, late]);
  } catch (err) {
    // The scheduler drops inputs still queued at the deadline, which can come a moment before
    // the timer: the client sees one code for one cause either way.
    if (err instanceof KilnError && err.code === 'KILN_ERR_DEADLINE_EXCEEDED')
      throw new KilnError('KILN_ERR_HTTP_TIMEOUT', { limit: timeoutMs }, { cause: err });
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
