import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Scripts run from dist/scripts/. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
