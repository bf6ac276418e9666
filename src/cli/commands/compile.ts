import { relative } from 'node:path';
import { compile, DEFAULT_MAX_BATCH, DEFAULT_MAX_LENGTH, MAX_BATCH_LIMIT, type CompileStep } from '../../compiler/compile.js';
import { Progress } from '../../core/log.js';
import type { Manifest } from '../../model/artifact.js';
import { defineCommand, integer, nonEmpty } from '../table.js';
import { formatBytes, formatCount, formatMs, operatorChanges, sum, table } from '../format.js';

const STEP_LABELS: Record<CompileStep, string> = {
  hash: 'hashed the source',
  import: 'imported the checkpoint into an ONNX graph',
  'check-operators': 'checked every operator against the runtime',
  'check-io': 'checked inputs, outputs and labels',
  optimize: 'optimized the graph for this machine',
  'smoke-test': 'ran a test inference',
  write: 'wrote the artifact',
};

/** Relative to the working folder when inside it, else absolute. */
function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}

function describeFusions(f: Manifest['model']['fusions']): string {
  const part = (n: number, what: string): string => `${what} ${n > 0 ? n : 'none'}`;
  return [part(f.attention, 'attention'), part(f.layerNorm, 'layer norm'), part(f.gelu, 'GELU'), part(f.matmul, 'MatMul/Gemm')].join(', ');
}

export const compileCommand = defineCommand({
  name: 'compile',
  summary: 'Compile a model for this machine into an artifact (cached).',
  description:
    'Checks every operator against what ONNX Runtime supports (before any other work), checks that the inputs ' +
    'are what the tokenizer produces and the output matches config.json\'s labels, applies ONNX Runtime\'s full ' +
    'graph optimization for this CPU, runs a test inference, and writes an artifact folder (manifest.json, the ' +
    'optimized model, the tokenizer). Results are cached under $KILN_CACHE_DIR (default ~/.cache/kiln): a second ' +
    'compile of the same source with the same options copies the cached artifact.',
  positionals: [
    {
      name: 'SOURCE',
      description:
        'A Hugging Face-layout folder (config.json, tokenizer.json, and onnx/model.onnx, model.onnx, or safetensors weights that are imported on the way) or a .onnx file with config.json and tokenizer.json beside it.',
      required: true,
    },
  ],
  flags: {
    out: { type: 'string', short: 'o', arg: 'DIR', description: 'Artifact folder to write.', default: null as string | null, defaultText: '<source-name>.kiln', parse: nonEmpty },
    'max-length': {
      type: 'string',
      arg: 'N',
      description: 'Longest token sequence, special tokens included; longer texts are truncated. Capped by the model\'s position embeddings.',
      default: undefined as number | undefined,
      defaultText: `${DEFAULT_MAX_LENGTH}, or the model's position limit if smaller`,
      parse: integer(2, 8192),
    },
    'max-batch': { type: 'string', arg: 'N', description: 'Most texts per inference call.', default: DEFAULT_MAX_BATCH, parse: integer(1, MAX_BATCH_LIMIT) },
    'no-cache': { type: 'boolean', description: 'Compile from scratch; neither read nor write the compile cache.', default: false },
    json: { type: 'boolean', description: 'Print the result (artifact path, cache hit or miss, manifest) as one JSON object.', default: false },
  },
  examples: [
    { command: 'kiln compile models/sst2-distilbert-tiny', note: 'compile the embedded sentiment model to ./sst2-distilbert-tiny.kiln' },
    { command: 'kiln compile model.onnx -o /srv/models/sentiment.kiln --max-length 64 --max-batch 16', note: 'a bare ONNX file (config.json and tokenizer.json beside it), shorter sequences' },
  ],
  async run({ positionals, flags }) {
    const source = positionals.SOURCE![0]!;
    const progress = new Progress({ quiet: flags.json });
    const result = await compile({
      source,
      out: flags.out ?? undefined,
      maxLength: flags['max-length'],
      maxBatch: flags['max-batch'],
      cache: !flags['no-cache'],
      onStep: (step, phase) => (phase === 'start' ? progress.step(STEP_LABELS[step]) : progress.done(STEP_LABELS[step])),
    });
    const { manifest } = result;
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ artifact: result.artifactDir, cache: result.cache, cacheKey: result.cacheKey, durationMs: Math.round(result.durationMs), manifest })}\n`);
      return;
    }
    const ops = manifest.model.operators;
    const fileRows = Object.entries(manifest.files).map(([name, f]) => `${name} ${formatBytes(f.bytes)}`);
    const total = Object.values(manifest.files).reduce((n, f) => n + f.bytes, 0);
    process.stdout.write(
      `compiled ${source} → ${displayPath(result.artifactDir)}\n` +
        table([
          ['task', `${manifest.task}, labels ${manifest.labels.join(', ')}`],
          ...(manifest.synthetic ? [['weights', `SYNTHETIC: ${manifest.synthetic}`] as [string, string]] : []),
          ['parameters', `${formatCount(manifest.model.parameters)} (${manifest.model.parameters.toLocaleString('en-US')})`],
          ['operators', `${sum(ops.source)} → ${sum(ops.optimized)} nodes after optimization`],
          ['', operatorChanges(ops.source, ops.optimized)],
          ['fusions', describeFusions(manifest.model.fusions)],
          ['inputs', manifest.model.inputs.map((i) => i.name).join(', ')],
          ['limits', `max length ${manifest.limits.maxLength} tokens, max batch ${manifest.limits.maxBatch}`],
          ['target', `${manifest.compile.backend}, ${manifest.compile.target.cpu} (${manifest.compile.target.arch}), ONNX Runtime ${manifest.versions.onnxruntime}`],
          ['files', `${fileRows.join(', ')}; ${formatBytes(total)} in all`],
          ['time', `${formatMs(result.durationMs)} (cache ${result.cache}${result.cache === 'off' ? '' : `, key ${result.cacheKey.slice(0, 12)}`})`],
        ]) +
        '\n',
    );
  },
});
