/**
 * Which files of a repository kiln downloads: the config, tokenizer, preprocessor and
 * sentence-transformers files it reads, and ONE set of weights — `onnx/model.onnx` (or a root
 * `model.onnx`) with its external data, else `model.safetensors` or a sharded index and its
 * shards. Repos ship many variants (quantized graphs, PyTorch, TF, Flax); none of those is fetched.
 */
import { KilnError } from '../core/errors.js';
import type { ListingEntry } from './cache-layout.js';

export type WeightsChoice = 'onnx' | 'safetensors';
export const WEIGHTS_CHOICES: readonly WeightsChoice[] = ['onnx', 'safetensors'];

const COMPANIONS = [
  'config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'preprocessor_config.json',
  'modules.json',
  'config_sentence_transformers.json',
  'sentence_bert_config.json',
];
/** sentence-transformers module folders (`1_Pooling/config.json`, `2_Normalize/…`). */
const MODULE_CONFIG = /^\d+_[^/]+\/config\.json$/;
const ONNX_GRAPHS = ['onnx/model.onnx', 'model.onnx'];
export const SAFETENSORS_INDEX = 'model.safetensors.index.json';
/** Formats that load through pickle (arbitrary code) or that kiln cannot import. */
const OTHER_WEIGHTS = /(^|\/)(pytorch_model[^/]*\.bin|[^/]+\.(pt|pth|ckpt|bin|h5|msgpack|onnx|gguf))$/;

export interface Selection {
  /** Files to have in the snapshot (for a sharded checkpoint: the index; shards come from {@link shardsOf}). */
  files: ListingEntry[];
  weights: 'onnx' | 'safetensors' | 'safetensors-sharded';
  /** The shard index, when the weights are sharded. */
  index: ListingEntry | null;
}

export interface SelectContext {
  repo: string;
  commit: string;
}

/** The graph's external-data files: same folder, named `model.onnx_data…` or `model.onnx.data…`. */
function externalData(listing: Map<string, ListingEntry>, graph: string): ListingEntry[] {
  const prefix = `${graph}_data`;
  const dotted = `${graph}.data`;
  return [...listing.values()].filter((e) => e.path.startsWith(prefix) || e.path.startsWith(dotted));
}

/** Throws KILN_ERR_HUB_NO_WEIGHTS naming what the repo has and the way out. */
export function selectFiles(
  listing: Map<string, ListingEntry>,
  choice: WeightsChoice | undefined,
  context: SelectContext,
): Selection {
  const companions = [...listing.values()].filter((e) => COMPANIONS.includes(e.path) || MODULE_CONFIG.test(e.path));
  const graph = ONNX_GRAPHS.map((p) => listing.get(p)).find((e) => e !== undefined);
  const single = listing.get('model.safetensors');
  const index = listing.get(SAFETENSORS_INDEX);
  if (graph && choice !== 'safetensors')
    return { files: [...companions, graph, ...externalData(listing, graph.path)], weights: 'onnx', index: null };
  if (choice !== 'onnx') {
    if (single) return { files: [...companions, single], weights: 'safetensors', index: null };
    if (index) return { files: [...companions, index], weights: 'safetensors-sharded', index };
  }
  throw noWeights(listing, choice, context, {
    graph: graph !== undefined,
    safetensors: (single ?? index) !== undefined,
  });
}

function noWeights(
  listing: Map<string, ListingEntry>,
  choice: WeightsChoice | undefined,
  context: SelectContext,
  has: { graph: boolean; safetensors: boolean },
): KilnError {
  const others = [...listing.keys()].filter((p) => OTHER_WEIGHTS.test(p));
  const found =
    others.length > 0 ? others.slice(0, 8).join(', ') + (others.length > 8 ? ', …' : '') : 'no weight files';
  const { repo } = context;
  let fix: string;
  if (choice === 'onnx' && has.safetensors)
    fix =
      'it has safetensors weights but no onnx/model.onnx: drop --weights onnx (kiln imports safetensors on the way)';
  else if (choice === 'safetensors' && has.graph)
    fix = 'it has onnx/model.onnx but no model.safetensors: drop --weights safetensors';
  else if (others.some((p) => /\.(bin|pt|pth|ckpt)$/.test(p)))
    fix =
      `kiln never loads PyTorch pickles (pytorch_model.bin, *.pt): unpickling runs arbitrary code. Convert the weights to safetensors: ` +
      `the Hub's "safetensors/convert" Space opens a pull request with model.safetensors (then use hf:${repo}@refs/pr/N), or run ` +
      `python -c "from transformers import AutoModel; AutoModel.from_pretrained('${repo}').save_pretrained('out', safe_serialization=True)" ` +
      'and compile the folder (copy the tokenizer files beside it)';
  else if (others.some((p) => p.endsWith('.onnx')))
    fix = 'kiln uses onnx/model.onnx (or model.onnx); download the variant you want yourself and compile the folder';
  else fix = 'kiln needs onnx/model.onnx, model.onnx, model.safetensors or model.safetensors.index.json';
  return new KilnError('KILN_ERR_HUB_NO_WEIGHTS', { repo, commit: context.commit, found, fix });
}

/** The shards a `model.safetensors.index.json` names, each of which must be in the listing. */
export function shardsOf(
  indexJson: unknown,
  listing: Map<string, ListingEntry>,
  context: SelectContext,
): ListingEntry[] {
  const map = (indexJson as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null)
    throw new KilnError('KILN_ERR_HUB_NO_WEIGHTS', {
      repo: context.repo,
      commit: context.commit,
      found: SAFETENSORS_INDEX,
      fix: 'the index has no "weight_map"; use a revision with a valid index, or a model.safetensors file',
    });
  const names = [
    ...new Set(Object.values(map as Record<string, unknown>).filter((v): v is string => typeof v === 'string')),
  ].sort();
  return names.map((name) => {
    const entry = listing.get(name);
    if (!entry)
      throw new KilnError('KILN_ERR_HUB_FILE_MISSING', {
        repo: context.repo,
        commit: context.commit,
        file: name,
        purpose: `a shard of the weights that ${SAFETENSORS_INDEX} lists`,
      });
    return entry;
  });
}
