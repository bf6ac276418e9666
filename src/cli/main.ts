#!/usr/bin/env node
/** The `kiln` executable: parse, dispatch to one handler, print errors as one coded line. */
import { formatError } from '../core/log.js';
import { KILN_VERSION } from '../version.js';
import { COMMANDS } from './commands.js';
import { renderGroup, renderHelp, renderOverview } from './help.js';
import { parseInvocation } from './parse.js';

async function main(argv: string[]): Promise<void> {
  const invocation = parseInvocation(argv, COMMANDS);
  switch (invocation.kind) {
    case 'overview':
      process.stdout.write(renderOverview(COMMANDS, KILN_VERSION));
      return;
    case 'version':
      process.stdout.write(`${KILN_VERSION}\n`);
      return;
    case 'group-help':
      process.stdout.write(renderGroup(invocation.group, COMMANDS));
      return;
    case 'help':
      process.stdout.write(renderHelp(invocation.command));
      return;
    case 'run':
      await invocation.command.run({ positionals: invocation.positionals, flags: invocation.flags });
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${formatError(err)}\n`);
  process.exitCode = 1;
});
