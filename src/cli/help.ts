/** `--help` text and docs/cli.md, both rendered from the command table so they cannot drift. */
import type { CommandSpec, FlagSpec } from './table.js';
import { usage } from './table.js';

const HELP_FLAG = { short: 'h', description: 'Show this help.' };

function flagLabel(name: string, flag: FlagSpec<unknown>): string {
  const short = flag.short ? `-${flag.short}, ` : '    ';
  return `${short}--${name}${flag.type === 'string' ? ` ${flag.arg ?? 'VALUE'}` : ''}`;
}

function defaultLabel(flag: FlagSpec<unknown>): string {
  const value =
    flag.defaultText ?? (flag.default === null || flag.default === undefined ? 'none' : String(flag.default));
  return flag.env ? `${value}; env ${flag.env}` : value;
}

function wrap(text: string, width: number, indent: string): string {
  const words = text.split(/\s+/);
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.map((l, i) => (i === 0 ? l : indent + l)).join('\n');
}

export function renderHelp(spec: CommandSpec): string {
  const out: string[] = [`Usage: ${usage(spec)}`, '', spec.summary, '', wrap(spec.description, 96, ''), ''];
  if (spec.positionals.length > 0) {
    out.push('Arguments:');
    const width = Math.max(...spec.positionals.map((p) => p.name.length)) + 2;
    for (const p of spec.positionals)
      out.push(`  ${p.name.padEnd(width)}${wrap(p.description, 80, ' '.repeat(width + 2))}`);
    out.push('');
  }
  out.push('Options:');
  const rows: Array<[string, string]> = Object.entries(spec.flags).map(([name, flag]) => [
    flagLabel(name, flag),
    `${flag.description} (default: ${defaultLabel(flag)})`,
  ]);
  rows.push([`-${HELP_FLAG.short}, --help`, HELP_FLAG.description]);
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  for (const [label, text] of rows)
    out.push(`  ${label.padEnd(width)}${wrap(text, 96 - width, ' '.repeat(width + 2))}`);
  out.push('', 'Examples:');
  for (const e of spec.examples) out.push(`  # ${e.note}`, `  $ ${e.command}`, '');
  return out.join('\n');
}

export function renderOverview(commands: readonly CommandSpec[], version: string): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return [
    `kiln ${version}: compile, run and serve ML models for fast, cheap inference on ONNX Runtime.`,
    '',
    'Usage: kiln <command> [arguments] [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    'Run "kiln <command> --help" for a command\'s arguments, options and examples.',
    'Errors print one line with a stable code (docs/errors.md); KILN_DEBUG=1 adds stack traces.',
    '',
  ].join('\n');
}

export function renderGroup(group: string, commands: readonly CommandSpec[]): string {
  const members = commands.filter((c) => c.name.startsWith(`${group} `));
  const width = Math.max(...members.map((c) => c.name.length)) + 2;
  return [
    `Usage: kiln ${group} <subcommand> [options]`,
    '',
    'Subcommands:',
    ...members.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
  ].join('\n');
}

const md = (text: string): string => text.replace(/\|/g, '\\|');

/** docs/cli.md. */
export function renderMarkdown(commands: readonly CommandSpec[]): string {
  const out: string[] = [
    '# kiln command line',
    '',
    '<!-- Generated from src/cli/commands.ts by `npm run docs`; a test fails when this file is stale. Do not edit by hand. -->',
    '',
    'Every command prints `--help` with the same content. Errors are one line on stderr with a stable code',
    '(see [errors.md](errors.md)) and exit status 1; `KILN_DEBUG=1` adds a stack trace.',
    '',
    ...commands.map((c) => `- [\`kiln ${c.name}\`](#kiln-${c.name.replace(/ /g, '-')}): ${c.summary}`),
    '',
  ];
  for (const c of commands) {
    out.push(`## kiln ${c.name}`, '', c.summary, '', '```', usage(c), '```', '', c.description, '');
    if (c.positionals.length > 0) {
      out.push('| argument | description |', '| --- | --- |');
      for (const p of c.positionals)
        out.push(
          `| \`${p.name}\`${p.required ? '' : ' (optional)'}${p.variadic ? ' (repeatable)' : ''} | ${md(p.description)} |`,
        );
      out.push('');
    }
    out.push('| flag | description | default |', '| --- | --- | --- |');
    for (const [name, flag] of Object.entries(c.flags))
      out.push(`| \`${flagLabel(name, flag).trim()}\` | ${md(flag.description)} | \`${md(defaultLabel(flag))}\` |`);
    out.push(`| \`-h, --help\` | ${HELP_FLAG.description} | |`, '', 'Examples:', '', '```sh');
    for (const e of c.examples) out.push(`# ${e.note}`, e.command);
    out.push('```', '');
  }
  return out.join('\n');
}
