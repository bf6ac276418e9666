import { readFileSync } from 'node:fs';

// Compiled to dist/src/version.js, two folders below package.json.
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** kiln's version, part of every cache key and manifest. */
export const KILN_VERSION: string = pkg.version;

/** The package's root folder (holds models/ and data/), from dist/src/version.js. */
export const PACKAGE_ROOT: string = new URL('../../', import.meta.url).pathname;
