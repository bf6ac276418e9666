/**
 * The Hub settings kiln shares with Python's huggingface_hub, read from the same environment
 * variables so one cache, one token and one mirror serve both: HF_ENDPOINT, HF_TOKEN
 * (HUGGING_FACE_HUB_TOKEN, the token file `hf auth login` writes), HF_HOME, HF_HUB_CACHE,
 * HF_HUB_OFFLINE, HF_HUB_ETAG_TIMEOUT and HF_HUB_DOWNLOAD_TIMEOUT.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KilnError } from '../core/errors.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface HubSettings {
  /** Base URL of the Hub or mirror, without a trailing slash. */
  endpoint: string;
  /** Sent only to `endpoint`'s origin; never printed. Null: anonymous. */
  token: string | null;
  /** The cache folder holding `models--ORG--NAME/…`. */
  cacheDir: string;
  /** No request at all: only what the cache holds. */
  offline: boolean;
  /** Deadline for one metadata request (revision, listing page), in ms. */
  metadataTimeoutMs: number;
  /** A download with no bytes for this long is cut and resumed, in ms. */
  stallTimeoutMs: number;
}

/** What flags can override; absent fields come from the environment. */
export interface HubOverrides {
  /** `--token`: beats every environment variable. */
  token?: string | null;
  /** `--offline`: true forces offline; false leaves HF_HUB_OFFLINE in charge. */
  offline?: boolean;
}

const TRUE_VALUES = new Set(['1', 'ON', 'YES', 'TRUE']);

/** Python's reading of boolean environment variables: 1, ON, YES, TRUE (any case) are true. */
export function envFlag(value: string | undefined): boolean {
  return value !== undefined && TRUE_VALUES.has(value.trim().toUpperCase());
}

function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path;
}

/** `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`. */
export function hfHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HOME) return expandHome(env.HF_HOME);
  return join(env.XDG_CACHE_HOME ? expandHome(env.XDG_CACHE_HOME) : join(homedir(), '.cache'), 'huggingface');
}

/** `$HF_HUB_CACHE`, else `$HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`: where Python caches models too. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE;
  return explicit ? expandHome(explicit) : join(hfHome(env), 'hub');
}

function seconds(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback * 1000;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw new KilnError('KILN_ERR_CLI_INVALID_FLAG', {
      flag: `${name} (environment)`,
      rule: 'a number of seconds above 0',
      value: raw,
    });
  return value * 1000;
}

function endpointFrom(env: NodeJS.ProcessEnv): string {
  const raw = (env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, '');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new KilnError('KILN_ERR_CLI_INVALID_FLAG', {
      flag: 'HF_ENDPOINT (environment)',
      rule: 'an http:// or https:// URL of a Hugging Face Hub or mirror',
      value: raw,
    });
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password)
    throw new KilnError('KILN_ERR_CLI_INVALID_FLAG', {
      flag: 'HF_ENDPOINT (environment)',
      rule: 'an http:// or https:// URL without credentials in it (put the token in HF_TOKEN)',
      value: `${url.protocol}//${url.host}${url.pathname}`,
    });
  return raw;
}

/** `--token`, HF_TOKEN, HUGGING_FACE_HUB_TOKEN, then the token file (`$HF_TOKEN_PATH` or `$HF_HOME/token`). */
async function tokenFrom(env: NodeJS.ProcessEnv, flag: string | null | undefined): Promise<string | null> {
  const direct = flag || env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN;
  if (direct) return direct.trim() || null;
  try {
    const stored = (
      await readFile(env.HF_TOKEN_PATH ? expandHome(env.HF_TOKEN_PATH) : join(hfHome(env), 'token'), 'utf8')
    ).trim();
    return stored || null;
  } catch {
    return null;
  }
}

export async function hubSettings(
  overrides: HubOverrides = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<HubSettings> {
  return {
    endpoint: endpointFrom(env),
    token: await tokenFrom(env, overrides.token),
    cacheDir: hubCacheDir(env),
    offline: overrides.offline === true || envFlag(env.HF_HUB_OFFLINE) || envFlag(env.TRANSFORMERS_OFFLINE),
    metadataTimeoutMs: seconds(env, 'HF_HUB_ETAG_TIMEOUT', 10),
    stallTimeoutMs: seconds(env, 'HF_HUB_DOWNLOAD_TIMEOUT', 10),
  };
}
