import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { COMMANDS } from '../../src/cli/commands.js';
import { renderHelp, renderMarkdown } from '../../src/cli/help.js';
import { ERRORS } from '../../src/core/errors.js';
import { renderErrorsMarkdown } from '../../src/core/errors-doc.js';
import { REPO } from '../fixtures/models.js';

test('docs/cli.md equals renderMarkdown(COMMANDS) (run "npm run docs" after changing a command)', async () => {
  const onDisk = await readFile(join(REPO, 'docs', 'cli.md'), 'utf8');
  assert.equal(onDisk, renderMarkdown(COMMANDS));
});

test('docs/errors.md documents every code of the error table, and is current', async () => {
  const onDisk = await readFile(join(REPO, 'docs', 'errors.md'), 'utf8');
  for (const code of Object.keys(ERRORS)) assert.ok(onDisk.includes(`\`${code}\``), `${code} is not in docs/errors.md`);
  assert.equal(onDisk, renderErrorsMarkdown());
});

test('renderHelp lists every flag with its default and at least two examples, for every command', () => {
  for (const command of COMMANDS) {
    const help = renderHelp(command);
    assert.ok(command.examples.length >= 2, `${command.name} has fewer than two examples`);
    for (const e of command.examples)
      assert.ok(help.includes(`$ ${e.command}`), `${command.name} help lacks example ${e.command}`);
    for (const name of Object.keys(command.flags)) {
      const line = help.split('\n').find((l) => l.includes(`--${name}`));
      assert.ok(line, `${command.name} help lacks --${name}`);
      assert.match(
        help.slice(help.indexOf(`--${name}`)),
        /\(default: [^)]+\)/,
        `${command.name} --${name} shows no default`,
      );
    }
    assert.ok(help.includes('--help'));
  }
});
