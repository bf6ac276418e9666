/** argv → the command to run and its validated arguments, driven by the command table. */
import { parseArgs } from 'node:util';
import { KilnError } from '../core/errors.js';
import type { CommandSpec } from './table.js';
import { usage } from './table.js';

export type Invocation =
  | { kind: 'overview' }
  | { kind: 'version' }
  | { kind: 'group-help'; group: string }
  | { kind: 'help'; command: CommandSpec }
  | { kind: 'run'; command: CommandSpec; positionals: Record<string, string[]>; flags: Record<string, unknown> };

export function findCommand(
  argv: readonly string[],
  commands: readonly CommandSpec[],
): { command: CommandSpec | null; rest: string[]; group: string | null } {
  const [first, second] = argv;
  const two = commands.find((c) => c.name === `${first} ${second}`);
  if (two) return { command: two, rest: argv.slice(2), group: null };
  const one = commands.find((c) => c.name === first);
  if (one) return { command: one, rest: argv.slice(1), group: null };
  const isGroup = commands.some((c) => c.name.startsWith(`${first} `));
  return { command: null, rest: argv.slice(1), group: isGroup ? (first ?? null) : null };
}

export function parseInvocation(
  argv: readonly string[],
  commands: readonly CommandSpec[],
  env: NodeJS.ProcessEnv = process.env,
): Invocation {
  const [first] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    const target = first === 'help' ? argv.slice(1) : [];
    if (target.length > 0) {
      const found = findCommand(target, commands);
      if (found.command) return { kind: 'help', command: found.command };
      if (found.group) return { kind: 'group-help', group: found.group };
    }
    return { kind: 'overview' };
  }
  if (first === '--version' || first === '-v') return { kind: 'version' };

  const { command, rest, group } = findCommand(argv, commands);
  if (!command) {
    if (group) {
      const sub = rest[0];
      if (sub === undefined || sub === '--help' || sub === '-h') return { kind: 'group-help', group };
      throw new KilnError('KILN_ERR_CLI_UNKNOWN_COMMAND', {
        command: `${group} ${sub}`,
        known: commands.filter((c) => c.name.startsWith(`${group} `)).map((c) => c.name),
      });
    }
    throw new KilnError('KILN_ERR_CLI_UNKNOWN_COMMAND', {
      command: first,
      known: [...new Set(commands.map((c) => c.name.split(' ')[0]!))],
    });
  }
  if (rest.includes('--help') || rest.includes('-h')) return { kind: 'help', command };

  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [name, flag] of Object.entries(command.flags))
    options[name] = flag.short ? { type: flag.type, short: flag.short } : { type: flag.type };

  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...rest], options, allowPositionals: true, strict: true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const flag = /'(-[^' ]+)/.exec(e.message)?.[1] ?? '?';
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION')
      throw new KilnError('KILN_ERR_CLI_UNKNOWN_FLAG', { command: command.name, flag }, { cause: err });
    throw new KilnError(
      'KILN_ERR_CLI_INVALID_FLAG',
      { flag, rule: 'given a value (--flag VALUE or --flag=VALUE)', value: '' },
      { cause: err },
    );
  }

  const flags: Record<string, unknown> = {};
  for (const [name, flag] of Object.entries(command.flags)) {
    const raw = parsed.values[name] as string | boolean | undefined;
    const fromEnv = flag.env ? env[flag.env] : undefined;
    if (raw !== undefined) flags[name] = typeof raw === 'string' && flag.parse ? flag.parse(raw, `--${name}`) : raw;
    else if (fromEnv !== undefined && fromEnv !== '')
      flags[name] = flag.parse ? flag.parse(fromEnv, `${flag.env} (environment)`) : fromEnv;
    else flags[name] = flag.default;
  }

  const positionals: Record<string, string[]> = {};
  const values = [...parsed.positionals];
  for (const p of command.positionals) {
    const taken = p.variadic ? values.splice(0) : values.splice(0, 1);
    if (taken.length === 0 && p.required)
      throw new KilnError('KILN_ERR_CLI_MISSING_ARGUMENT', {
        command: command.name,
        argument: p.name,
        usage: usage(command),
      });
    positionals[p.name] = taken;
  }
  if (values.length > 0)
    throw new KilnError('KILN_ERR_CLI_EXTRA_ARGUMENT', {
      command: command.name,
      value: values[0]!,
      usage: usage(command),
    });
  return { kind: 'run', command, positionals, flags };
}
