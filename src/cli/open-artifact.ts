import { compile } from '../compiler/compile.js';
import { KilnError } from '../core/errors.js';
import { pathKind } from '../core/fs.js';
import { isPackagePath, unpackPackage } from '../deploy/package.js';
import { mayBeHubModel, type PullOptions } from '../hub/pull.js';
import { isArtifactDir } from '../model/artifact.js';

/**
 * An ARTIFACT argument may also be a SOURCE: then it is compiled through the cache (a hit after
 * the first time) and the cache entry is used. A SOURCE may be a Hub model (`hf:ORG/NAME`), pulled
 * as `options.hub` says. It may also be a package (kiln package's .tar.gz): then it is extracted
 * into the cache once and that folder is used. Returns the artifact folder.
 */
export async function artifactFromArgument(
  path: string,
  options: { quiet: boolean; hub?: PullOptions },
): Promise<string> {
  const kind = await pathKind(path);
  if (kind === 'missing' && !mayBeHubModel(path)) throw new KilnError('KILN_ERR_SOURCE_NOT_FOUND', { path });
  if (kind === 'dir' && (await isArtifactDir(path))) return path;
  if (kind === 'file' && isPackagePath(path)) return unpackPackage(path);
  const started = performance.now();
  const result = await compile({ source: path, out: null, hub: { quiet: options.quiet, ...options.hub } });
  if (!options.quiet && result.cache === 'miss') {
    process.stderr.write(
      `kiln: compiled ${path} in ${((performance.now() - started) / 1000).toFixed(1)} s (cached for next time: kiln cache ls)\n`,
    );
  }
  return result.artifactDir;
}
