/** Image files named on the command line or in a list file: their bytes, or a coded error naming them. */
import { readdir, readFile } from 'node:fs/promises';
import { dirname, extname, join, resolve } from 'node:path';
import { KilnError } from '../core/errors.js';
import { pathKind } from '../core/fs.js';
import { IMAGE_FORMATS, MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS } from './image.js';

/** The bytes of the image at `path`; `where` names it in errors ("TEXT argument 2", "line 5 of list.txt"). */
export async function readImageFile(path: string, where: string): Promise<Uint8Array> {
  const fail = (problem: string, cause?: unknown): never => {
    throw new KilnError(
      'KILN_ERR_INPUT_IMAGE',
      {
        where: `${where} (${JSON.stringify(path)})`,
        problem,
        formats: IMAGE_FORMATS.join(', ').toUpperCase(),
        megapixels: MAX_IMAGE_PIXELS / 1e6,
      },
      { cause },
    );
  };
  try {
    const bytes = await readFile(path);
    if (bytes.length > MAX_IMAGE_BYTES) fail(`it has ${bytes.length} bytes, more than ${MAX_IMAGE_BYTES}`);
    return bytes;
  } catch (err) {
    if (err instanceof KilnError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    return fail(
      code === 'ENOENT'
        ? 'the file does not exist'
        : code === 'EISDIR'
          ? 'it is a folder'
          : `it cannot be read (${(err as Error).message})`,
      err,
    );
  }
}

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp']);

/**
 * Image paths from a folder (its .jpg, .jpeg, .png and .webp files, sorted) or from a list file
 * (one path per line, relative to the list's folder).
 */
export async function imagePaths(path: string): Promise<string[]> {
  const kind = await pathKind(path);
  if (kind === 'missing') throw new KilnError('KILN_ERR_INPUT_FILE_NOT_FOUND', { path });
  if (kind === 'dir') {
    const names = (await readdir(path)).filter((n) => IMAGE_EXTENSIONS.has(extname(n).toLowerCase())).sort();
    if (names.length === 0) throw new KilnError('KILN_ERR_DATA_EMPTY', { path });
    return names.map((n) => join(path, n));
  }
  const lines = (await readFile(path, 'utf8'))
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  if (lines.length === 0) throw new KilnError('KILN_ERR_DATA_EMPTY', { path });
  return lines.map((l) => resolve(dirname(path), l));
}
