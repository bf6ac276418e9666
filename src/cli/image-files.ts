/** Image files named on the command line or in a list file: their bytes, or a coded error naming them. */
import { readFile } from 'node:fs/promises';
import { KilnError } from '../core/errors.js';
import { IMAGE_FORMATS, MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS } from '../model/image.js';

/** The bytes of the image at `path`; `where` names it in errors ("TEXT argument 2", "line 5 of list.txt"). */
export async function readImageFile(path: string, where: string): Promise<Uint8Array> {
  const fail = (problem: string, cause?: unknown): never => {
    throw new KilnError('KILN_ERR_INPUT_IMAGE', { where: `${where} (${JSON.stringify(path)})`, problem, formats: IMAGE_FORMATS.join(', ').toUpperCase(), megapixels: MAX_IMAGE_PIXELS / 1e6 }, { cause });
  };
  try {
    const bytes = await readFile(path);
    if (bytes.length > MAX_IMAGE_BYTES) fail(`it has ${bytes.length} bytes, more than ${MAX_IMAGE_BYTES}`);
    return bytes;
  } catch (err) {
    if (err instanceof KilnError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    return fail(code === 'ENOENT' ? 'the file does not exist' : code === 'EISDIR' ? 'it is a folder' : `it cannot be read (${(err as Error).message})`, err);
  }
}
