import type { OnCompile } from '../api/open.js';

/**
 * Tells the user on stderr when an ARTIFACT argument was a source that had to be compiled (a
 * cache miss; the next run finds it in the cache).
 */
export const compileNotice: OnCompile = (source, result) => {
  if (result.cache !== 'miss') return;
  process.stderr.write(
    `kiln: compiled ${source} in ${(result.durationMs / 1000).toFixed(1)} s (cached for next time: kiln cache ls)\n`,
  );
};
