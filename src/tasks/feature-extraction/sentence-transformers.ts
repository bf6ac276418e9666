/**
 * sentence-transformers folders say how their vectors are made: `modules.json` lists the
 * pipeline (Transformer → Pooling → Normalize?) and the Pooling module's `config.json` names the
 * mode (`pooling_mode_cls_token`, `pooling_mode_mean_tokens`, `pooling_mode_max_tokens`). kiln
 * follows them when no flag says otherwise, so BAAI/bge-* (CLS) and all-MiniLM-* (mean, then
 * Normalize) come out as their authors made them.
 */
import { join } from 'node:path';
import { KilnError } from '../../core/errors.js';
import { pathKind } from '../../core/fs.js';
import type { Pooling } from '../../model/artifact.js';
import { readJson } from '../../model/source.js';

export interface PipelineFacts {
  pooling: Pooling | null;
  /** True when a Normalize module follows pooling; null without modules.json. */
  normalize: boolean | null;
  /** The file the facts came from, for the compile summary. */
  from: string | null;
  /** config_sentence_transformers.json's `prompts` (name → text put before a text); null when it has none. */
  prompts: Record<string, string> | null;
}

interface Module {
  path?: unknown;
  type?: unknown;
}

/** `pooling: false`: the caller chose the pooling, so the Pooling module is not read (nor refused). */
export async function sentenceTransformersPipeline(
  dir: string,
  options: { pooling?: boolean } = {},
): Promise<PipelineFacts> {
  const prompts = await sentenceTransformersPrompts(dir);
  return { ...(await pipelineModules(dir, options)), prompts };
}

/** The prompts of config_sentence_transformers.json; null when the file or its `prompts` is absent or empty. */
async function sentenceTransformersPrompts(dir: string): Promise<Record<string, string> | null> {
  const path = join(dir, 'config_sentence_transformers.json');
  if ((await pathKind(path)) !== 'file') return null;
  const prompts = ((await readJson(path)) as { prompts?: unknown } | null)?.prompts;
  if (prompts === undefined || prompts === null) return null;
  if (
    typeof prompts !== 'object' ||
    Array.isArray(prompts) ||
    !Object.values(prompts).every((v) => typeof v === 'string')
  ) {
    throw new KilnError('KILN_ERR_CONFIG_INVALID', {
      path,
      problem: 'its "prompts" is not an object of names to prompt texts ({"query": "query: ", …})',
    });
  }
  return Object.keys(prompts).length === 0 ? null : (prompts as Record<string, string>);
}

async function pipelineModules(dir: string, options: { pooling?: boolean }): Promise<Omit<PipelineFacts, 'prompts'>> {
  const modulesPath = join(dir, 'modules.json');
  if ((await pathKind(modulesPath)) !== 'file') return { pooling: null, normalize: null, from: null };
  const modules = await readJson(modulesPath);
  if (!Array.isArray(modules))
    throw new KilnError('KILN_ERR_CONFIG_INVALID', { path: modulesPath, problem: 'it is not a list of modules' });
  const typed = modules as Module[];
  const normalize = typed.some((m) => typeof m.type === 'string' && m.type.endsWith('.Normalize'));
  const poolingModule = typed.find((m) => typeof m.type === 'string' && m.type.endsWith('.Pooling'));
  if (options.pooling === false || !poolingModule || typeof poolingModule.path !== 'string')
    return { pooling: null, normalize, from: modulesPath };
  const configPath = join(dir, poolingModule.path, 'config.json');
  if ((await pathKind(configPath)) !== 'file') return { pooling: null, normalize, from: modulesPath };
  const config = (await readJson(configPath)) as Record<string, unknown>;
  const modes: Array<[string, Pooling]> = [
    ['pooling_mode_cls_token', 'cls'],
    ['pooling_mode_mean_tokens', 'mean'],
    ['pooling_mode_max_tokens', 'max'],
  ];
  const on = modes.filter(([field]) => config[field] === true).map(([, mode]) => mode);
  if (on.length !== 1) {
    const other = Object.keys(config).filter(
      (k) => k.startsWith('pooling_mode_') && config[k] === true && !modes.some(([f]) => f === k),
    );
    throw new KilnError('KILN_ERR_CONFIG_INVALID', {
      path: configPath,
      problem: `it turns on ${[...on, ...other].join(' + ') || 'no pooling mode'}; kiln pools with exactly one of cls, mean or max (pass --pooling to choose one)`,
    });
  }
  return { pooling: on[0]!, normalize, from: configPath };
}
