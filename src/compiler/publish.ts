/** Where a finished artifact goes: never over a folder or file that is not a kiln artifact. */

import { KilnError } from '../core/errors.js';
import { copyFlatDir, pathKind, replaceDir, temporarySibling } from '../core/fs.js';
import { isArtifactDir } from '../model/artifact.js';

/** Refuses to overwrite a folder or file that is not a kiln artifact. */
export async function assertWritableOutput(out: string): Promise<void> {
  const kind = await pathKind(out);
  if (kind === 'missing') return;
  if (kind === 'dir' && (await isArtifactDir(out))) return;
  throw new KilnError('KILN_ERR_OUTPUT_EXISTS', { path: out });
}

/** Puts a finished artifact at `out`, replacing an older artifact there. */
export async function publish(from: string, out: string, how: 'copy' | 'move'): Promise<string> {
  await assertWritableOutput(out);
  let staged = from;
  if (how === 'copy') {
    staged = temporarySibling(out);
    await copyFlatDir(from, staged);
  }
  await replaceDir(staged, out);
  return out;
}
