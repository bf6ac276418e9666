/**
 * The shape of kiln's one command table: commands, their arguments and flags with defaults and
 * validating parsers. `--help`, argument parsing and docs/cli.md are all derived from it.
 */
import { KilnError } from '../core/errors.js';

export interface FlagSpec<T> {
  type: 'string' | 'boolean';
  short?: string;
  /** Placeholder for the value in help, e.g. `N` or `DIR`. */
  arg?: string;
  description: string;
  /** The value when the flag is absent. */
  default: T;
  /** How the default reads in help when it is computed (e.g. `<source-name>.kiln`). */
  defaultText?: string;
  /** Environment variable that supplies the default when set. */
  env?: string;
  /** Turns the raw string into the value, or throws KILN_ERR_CLI_INVALID_FLAG. */
  parse?: (raw: string, flag: string) => T;
}

export interface PositionalSpec {
  name: string;
  description: string;
  required: boolean;
  /** Takes every remaining positional argument. */
  variadic?: boolean;
}

export interface Example {
  command: string;
  /** What it shows, one line. */
  note: string;
}

export type FlagValues<F extends Record<string, FlagSpec<unknown>>> = {
  [K in keyof F]: F[K] extends FlagSpec<infer T> ? T : never;
};

export interface CommandArgs<F extends Record<string, FlagSpec<unknown>>> {
  positionals: Record<string, string[]>;
  flags: FlagValues<F>;
}

export interface CommandSpec<F extends Record<string, FlagSpec<unknown>> = Record<string, FlagSpec<unknown>>> {
  /** One or two words: `compile`, `cache ls`. */
  name: string;
  summary: string;
  description: string;
  positionals: PositionalSpec[];
  flags: F;
  examples: [Example, Example, ...Example[]];
  run: (args: CommandArgs<F>) => Promise<void>;
}

export function defineCommand<F extends Record<string, FlagSpec<unknown>>>(spec: CommandSpec<F>): CommandSpec {
  return spec as unknown as CommandSpec;
}

type ValueFlagSpec<T> = Omit<FlagSpec<T>, 'type' | 'parse'> & { arg: string; parse: (raw: string, flag: string) => T };

/** A flag that takes a value (`--flag VALUE`). */
export function valueFlag<T>(spec: ValueFlagSpec<T>): FlagSpec<T> {
  return { type: 'string', ...spec };
}

/**
 * A value flag that is undefined when absent, so that whoever uses the value applies its own
 * default (the tuned layout, the artifact's limits, detection); `defaultText` says which.
 */
export function deferredFlag<T>(
  spec: Omit<ValueFlagSpec<T>, 'default' | 'defaultText'> & { defaultText: string },
): FlagSpec<T | undefined> {
  return { type: 'string', default: undefined, ...spec };
}

/**
 * A value flag that is null when absent: the command goes without it, or works a value out
 * itself (`defaultText` then says how; help says "none" otherwise).
 */
export function nullFlag<T>(spec: Omit<ValueFlagSpec<T>, 'default'>): FlagSpec<T | null> {
  return { type: 'string', default: null, ...spec };
}

export function usage(spec: CommandSpec): string {
  const args = spec.positionals.map((p) => {
    const name = p.variadic ? `${p.name}…` : p.name;
    return p.required ? name : `[${name}]`;
  });
  return ['kiln', spec.name, ...args, Object.keys(spec.flags).length > 0 ? '[options]' : ''].filter(Boolean).join(' ');
}

// Parsers shared by the table.

const invalid = (flag: string, rule: string, value: string): KilnError =>
  new KilnError('KILN_ERR_CLI_INVALID_FLAG', { flag, rule, value });

export function integer(min: number, max: number): (raw: string, flag: string) => number {
  return (raw, flag) => {
    const value = Number(raw);
    if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max)
      throw invalid(flag, `an integer in [${min}, ${max}]`, raw);
    return value;
  };
}

export function nonEmpty(raw: string, flag: string): string {
  if (raw.trim() === '') throw invalid(flag, 'a non-empty string', raw);
  return raw;
}

export function host(raw: string, flag: string): string {
  if (!/^[A-Za-z0-9.:\-[\]]+$/.test(raw))
    throw invalid(flag, 'a host name or IP address such as 127.0.0.1 or 0.0.0.0', raw);
  return raw;
}

export function choice<T extends string>(choices: readonly T[]): (raw: string, flag: string) => T {
  return (raw, flag) => {
    if (!(choices as readonly string[]).includes(raw)) throw invalid(flag, `one of ${choices.join(', ')}`, raw);
    return raw as T;
  };
}

export function decimal(min: number, max: number): (raw: string, flag: string) => number {
  return (raw, flag) => {
    const value = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(value) || value < min || value > max)
      throw invalid(flag, `a number in [${min}, ${max}]`, raw);
    return value;
  };
}

/** "0.485,0.456,0.406" → three numbers (per-channel values). */
export function numberTriple(raw: string, flag: string): [number, number, number] {
  const values = raw.split(',').map((v) => Number(v.trim()));
  if (values.length !== 3 || raw.split(',').some((v) => v.trim() === '') || !values.every(Number.isFinite))
    throw invalid(flag, 'three numbers separated by commas (one per channel)', raw);
  return values as [number, number, number];
}

export function nameList(raw: string, flag: string): string[] {
  const names = raw
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  if (names.length === 0) throw invalid(flag, 'one or more names separated by commas', raw);
  return names;
}
