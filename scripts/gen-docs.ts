/** Regenerates docs/cli.md and docs/errors.md from the command and error tables. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { COMMANDS } from '../src/cli/commands.js';
import { renderMarkdown } from '../src/cli/help.js';
import { renderErrorsMarkdown } from '../src/core/errors-doc.js';
import { REPO_ROOT } from './repo-root.js';

await writeFile(join(REPO_ROOT, 'docs', 'cli.md'), renderMarkdown(COMMANDS));
await writeFile(join(REPO_ROOT, 'docs', 'errors.md'), renderErrorsMarkdown());
process.stdout.write('wrote docs/cli.md and docs/errors.md\n');
