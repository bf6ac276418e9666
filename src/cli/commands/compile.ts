import { relative } from 'node:path';
import {
  type CompileStep,
  compile,
  DEFAULT_GPU_MAX_BATCH,
  DEFAULT_MAX_BATCH,
  DEFAULT_MAX_LENGTH,
  MAX_BATCH_LIMIT,
  PRECISIONS,
  type Precision,
} from '../../compiler/compile.js';
import { describePlacement } from '../../compiler/placement.js';
import { KilnError } from '../../core/errors.js';
import { Progress } from '../../core/log.js';
import {
  type Manifest,
  POOLINGS,
  type Pooling,
  SCORE_FUNCTIONS,
  type ScoreFunction,
  TASKS,
  type Task,
} from '../../model/artifact.js';
import { CHANNEL_ORDERS, type ChannelOrder, parseImageSize, RESIZE_MODES, type ResizeMode } from '../../model/image.js';
import { deviceFlag, noticeAutoDevice } from '../device-flag.js';
import {
  describeImage,
  formatBytes,
  formatCount,
  formatMs,
  operatorChanges,
  precisionRows,
  pruningRows,
  scoresRow,
  sum,
  table,
} from '../format.js';
import { hubFlags, hubOptions } from '../hub-flags.js';
import {
  choice,
  decimal,
  deferredFlag,
  defineCommand,
  integer,
  nameList,
  nonEmpty,
  nullFlag,
  numberTriple,
  valueFlag,
} from '../table.js';

const STEP_LABELS: Record<CompileStep, string> = {
  hash: 'hashed the source',
  import: 'imported the checkpoint into an ONNX graph',
  prune: 'looked for work the outputs do not need',
  quantize: 'quantized MatMul weights to int8',
  fp16: 'converted MatMul/Gemm weights and compute to fp16',
  'place-operators': 'placed the operators on the device (profiled test inference)',
  verify: 'verified the compiled model against the fp32 source',
  'measure-memory': 'measured one replica at max batch × max length',
  'check-operators': 'checked every operator against the runtime',
  'check-io': 'checked inputs, outputs and labels',
  optimize: 'optimized the graph (for this CPU; basic and portable for a GPU)',
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
  return [
    part(f.attention, 'attention'),
    part(f.layerNorm, 'layer norm'),
    part(f.gelu, 'GELU'),
    part(f.matmul, 'MatMul/Gemm'),
  ].join(', ');
}

export const compileCommand = defineCommand({
  name: 'compile',
  summary: 'Compile a model for this machine into an artifact (cached).',
  description:
    'Checks every operator against what ONNX Runtime supports (before any other work), checks that the inputs ' +
    "are what the tokenizer produces and the output matches config.json's labels, applies ONNX Runtime's full " +
    'graph optimization for this CPU, runs a test inference, and writes an artifact folder (manifest.json, the ' +
    'optimized model, the tokenizer). Results are cached under $KILN_CACHE_DIR (default ~/.cache/kiln): a second ' +
    'compile of the same source with the same options copies the cached artifact.',
  positionals: [
    {
      name: 'SOURCE',
      description:
        'A Hugging Face-layout folder (config.json, tokenizer.json, and onnx/model.onnx, model.onnx, or safetensors weights that are imported on the way), a .onnx file with config.json and tokenizer.json beside it, or a Hugging Face Hub model: hf:ORG/NAME[@REVISION] (see kiln pull; a bare ORG/NAME works when no such local path exists).',
      required: true,
    },
  ],
  flags: {
    out: nullFlag({
      short: 'o',
      arg: 'DIR',
      description: 'Artifact folder to write.',
      defaultText: '<source-name>.kiln',
      parse: nonEmpty,
    }),
    'max-length': deferredFlag({
      arg: 'N',
      description:
        "Longest token sequence, special tokens included; longer texts are truncated. Capped by the model's position embeddings.",
      defaultText: `${DEFAULT_MAX_LENGTH}, or the model's position limit if smaller`,
      parse: integer(2, 8192),
    }),
    'max-batch': deferredFlag({
      arg: 'N',
      description: 'Most texts per inference call.',
      defaultText: `${DEFAULT_MAX_BATCH} (${DEFAULT_GPU_MAX_BATCH} on a GPU device)`,
      parse: integer(1, MAX_BATCH_LIMIT),
    }),
    precision: valueFlag({
      arg: 'P',
      description:
        'fp32; int8 (CPU): MatMul/Gemm weights quantized per channel, activations at run time (faster, smaller); fp16 (GPU devices): MatMul/Gemm weights and compute in fp16, LayerNorm, Softmax and GELU in fp32. Check either with --verify.',
      default: 'fp32' as Precision,
      parse: choice<Precision>(PRECISIONS),
    }),
    'no-prune': {
      type: 'boolean',
      description:
        'Keep the last layer computing every token. By default, when the outputs read only the first token (classifiers, rerankers, CLS pooling), the last layer computes its query, attention output and feed-forward for that token alone: the same answers (within 1e-5 in fp32), less work.',
      default: false,
    },
    'quantize-embeddings': {
      type: 'boolean',
      description: 'With int8: also store the word-embedding table in int8 (about 4× smaller).',
      default: false,
    },
    'keep-fp32': valueFlag({
      arg: 'NODES',
      description: 'With int8: node names (or prefixes ending in *) to keep in fp32, comma-separated.',
      default: [] as string[],
      defaultText: 'none',
      parse: nameList,
    }),
    verify: nullFlag({
      arg: 'FILE',
      description:
        "Run the fp32 source and the compiled model on every row of FILE (the rows kiln batch reads: TSV/CSV with a text column and optionally label, or JSONL) and fail if accuracy drops too much. Token classification compares each token's label; question answering (question, context, optional answer/answers) the answer text, exactly; zero-shot (text, candidate_labels, optional label) the top label.",
      parse: nonEmpty,
    }),
    'max-accuracy-drop': valueFlag({
      arg: 'PTS',
      description: 'With --verify: most accuracy the compiled model may lose, in percentage points.',
      default: 1,
      parse: decimal(0, 100),
    }),
    'min-agreement': valueFlag({
      arg: 'F',
      description:
        'With --verify: least fraction of rows (tokens, for token classification) answered as the fp32 source answers them; for classifiers, only on rows without labels.',
      default: 0.98,
      parse: decimal(0, 1),
    }),
    task: deferredFlag({
      arg: 'T',
      description:
        "text-classification, feature-extraction (embeddings), image-classification, text-ranking (rerankers), token-classification (NER, PII), zero-shot-classification (NLI heads) or question-answering. Detected from config.json's architectures (…ForSequenceClassification: zero-shot-classification when id2label has entailment and contradiction, text-ranking with one label, else text-classification; …ForTokenClassification; …ForQuestionAnswering; BertModel…) and the graph's outputs (rank-3 logits [batch, tokens, labels]: token-classification; start_logits and end_logits: question-answering); set it to serve a classifier checkpoint's encoder as an embedder.",
      defaultText: 'detected',
      parse: choice<Task>(TASKS),
    }),
    pooling: deferredFlag({
      arg: 'P',
      description: 'feature-extraction: mean (over real tokens), cls (first token) or max.',
      defaultText: "a sentence-transformers folder's 1_Pooling/config.json, else mean",
      parse: choice<Pooling>(POOLINGS),
    }),
    'no-normalize': {
      type: 'boolean',
      description:
        'feature-extraction: keep raw pooled vectors (default: unit length, or as modules.json says when it lists no Normalize).',
      default: false,
    },
    'function-to-apply': deferredFlag({
      arg: 'F',
      description:
        'text classifiers: what turns logits into scores: softmax (one label of many), sigmoid (each label on its own) or none (the logits). The manifest records it.',
      defaultText: 'sigmoid for one logit or config.json\'s problem_type "multi_label_classification", else softmax',
      parse: choice<ScoreFunction>(SCORE_FUNCTIONS),
    }),
    'image-size': deferredFlag({
      arg: 'HxW',
      description:
        "image-classification: the input tensor's height and width (N for a square); needed when the graph leaves them open.",
      defaultText: "the graph's, else preprocessor_config.json's",
      parse: (raw: string, flag: string) =>
        parseImageSize(raw) ?? invalidFlag(flag, 'HxW or N, sizes in [1, 4096] (e.g. 224 or 48x192)', raw),
    }),
    mean: deferredFlag({
      arg: 'R,G,B',
      description: 'image-classification: per-channel mean subtracted after rescaling to [0, 1].',
      defaultText: 'preprocessor_config.json, else 0.5,0.5,0.5',
      parse: numberTriple,
    }),
    std: deferredFlag({
      arg: 'R,G,B',
      description: 'image-classification: per-channel standard deviation divided by.',
      defaultText: 'preprocessor_config.json, else 0.5,0.5,0.5',
      parse: numberTriple,
    }),
    channels: deferredFlag({
      arg: 'ORDER',
      description: 'image-classification: channel order of the tensor, rgb or bgr (models trained on OpenCV images).',
      defaultText: 'rgb',
      parse: choice<ChannelOrder>(CHANNEL_ORDERS),
    }),
    resize: deferredFlag({
      arg: 'MODE',
      description:
        'image-classification: exact (to HxW), shortest-edge (then center crop), fit-height-pad (keep the aspect, height H, pad the width with zeros: PaddleOCR) or none (images must be HxW).',
      defaultText: 'preprocessor_config.json, else exact',
      parse: choice<ResizeMode>(RESIZE_MODES),
    }),
    labels: deferredFlag({
      arg: 'A,B,…',
      description: 'Class names in logit order, for a model without config.json id2label (a bare image .onnx).',
      defaultText: "config.json's id2label",
      parse: nameList,
    }),
    calibrate: nullFlag({
      arg: 'DIR|FILE',
      description:
        'Image models with --precision int8: sample images (a folder, or a file listing paths) to calibrate static quantization on; a few dozen like the real inputs.',
      defaultText: 'required for image int8',
      parse: nonEmpty,
    }),
    'no-cache': {
      type: 'boolean',
      description: 'Compile from scratch; neither read nor write the compile cache.',
      default: false,
    },
    json: {
      type: 'boolean',
      description: 'Print the result (artifact path, cache hit or miss, manifest) as one JSON object.',
      default: false,
    },
    ...deviceFlag,
    ...hubFlags,
  },
  examples: [
    {
      command: 'kiln compile models/sst2-distilbert-tiny',
      note: 'compile the embedded sentiment model to ./sst2-distilbert-tiny.kiln',
    },
    {
      command: 'kiln compile models/sst2-distilbert-tiny --precision int8 --verify data/sst2/dev.tsv',
      note: 'int8, checked on the SST-2 dev set (fails if accuracy drops more than 1 point)',
    },
    {
      command: 'kiln compile models/sst2-distilbert-tiny --task feature-extraction -o sst2-encoder.kiln',
      note: "the same checkpoint's encoder as a sentence embedder (mean pooling, unit vectors)",
    },
    {
      command: 'kiln compile model.onnx -o /srv/models/sentiment.kiln --max-length 64 --max-batch 16',
      note: 'a bare ONNX file (config.json and tokenizer.json beside it), shorter sequences',
    },
    {
      command:
        'kiln compile ch_ppocr_mobile_v2.0_cls_infer.onnx --image-size 48x192 --resize fit-height-pad --channels bgr --labels 0,180',
      note: 'a bare image ONNX file: the PaddleOCR text-orientation classifier',
    },
  ],
  async run({ positionals, flags }) {
    const source = positionals.SOURCE![0]!;
    const progress = new Progress({ quiet: flags.json });
    const result = await compile({
      source,
      hub: { ...hubOptions(flags), quiet: flags.json },
      out: flags.out ?? undefined,
      maxLength: flags['max-length'],
      maxBatch: flags['max-batch'],
      cache: !flags['no-cache'],
      device: flags.device,
      precision: flags.precision,
      prune: !flags['no-prune'],
      quantizeEmbeddings: flags['quantize-embeddings'],
      keepFp32: flags['keep-fp32'],
      verify: flags.verify,
      maxAccuracyDrop: flags['max-accuracy-drop'],
      minAgreement: flags['min-agreement'],
      task: flags.task,
      calibrate: flags.calibrate,
      pooling: flags.pooling,
      normalize: flags['no-normalize'] ? false : undefined,
      functionToApply: flags['function-to-apply'],
      labels: flags.labels,
      image: {
        ...flags['image-size'],
        mean: flags.mean,
        std: flags.std,
        channels: flags.channels,
        resize: flags.resize,
      },
      onStep: (step, phase) =>
        phase === 'start' ? progress.step(STEP_LABELS[step]) : progress.done(STEP_LABELS[step]),
    });
    const { manifest } = result;
    noticeAutoDevice(flags.device, manifest.compile.backend, 'compile');
    const placement = manifest.compile.placement
      ? describePlacement(manifest.compile.backend, manifest.compile.placement)
      : null;
    if (placement?.warning) process.stderr.write(`kiln compile: warning: ${placement.warning}\n`);
    if (flags.json) {
      process.stdout.write(
        `${JSON.stringify({ artifact: result.artifactDir, cache: result.cache, cacheKey: result.cacheKey, durationMs: Math.round(result.durationMs), manifest })}\n`,
      );
      return;
    }
    const ops = manifest.model.operators;
    const fileRows = Object.entries(manifest.files).map(([name, f]) => `${name} ${formatBytes(f.bytes)}`);
    const total = Object.values(manifest.files).reduce((n, f) => n + f.bytes, 0);
    process.stdout.write(
      `compiled ${source} → ${displayPath(result.artifactDir)}\n` +
        table([
          [
            'task',
            manifest.embedding
              ? `${manifest.task}: ${manifest.embedding.dimension}-dimensional vectors, ${manifest.embedding.pooling} pooling${manifest.embedding.normalize ? ', L2-normalized' : ''}`
              : `${manifest.task}, labels ${manifest.labels.length > 12 ? `${manifest.labels.slice(0, 12).join(', ')} … (${manifest.labels.length})` : manifest.labels.join(', ')}`,
          ],
          ...(manifest.functionToApply ? [['scores', scoresRow(manifest.functionToApply)] as [string, string]] : []),
          ...(manifest.synthetic ? [['weights', `SYNTHETIC: ${manifest.synthetic}`] as [string, string]] : []),
          [
            'parameters',
            `${formatCount(manifest.model.parameters)} (${manifest.model.parameters.toLocaleString('en-US')})`,
          ],
          ['operators', `${sum(ops.source)} → ${sum(ops.optimized)} nodes after optimization`],
          ['', operatorChanges(ops.source, ops.optimized)],
          ['fusions', describeFusions(manifest.model.fusions)],
          ...pruningRows(manifest),
          ...(placement ? [['placement', placement.line] as [string, string]] : []),
          ...precisionRows(manifest),
          ['inputs', manifest.model.inputs.map((i) => i.name).join(', ')],
          ...(manifest.memory
            ? [
                [
                  'memory',
                  `${formatBytes(manifest.memory.perReplicaBytes)} per replica at batch ${manifest.memory.batch}${manifest.image ? ' images' : ` × ${manifest.memory.length} tokens`} (measured ${formatBytes(manifest.memory.measuredBytes)}, estimated ${formatBytes(manifest.memory.estimateBytes)})`,
                ] as [string, string],
              ]
            : []),
          ...(manifest.image ? [['image', describeImage(manifest.image)] as [string, string]] : []),
          [
            'limits',
            manifest.image
              ? `max batch ${manifest.limits.maxBatch} images`
              : `max length ${manifest.limits.maxLength} tokens, max batch ${manifest.limits.maxBatch}`,
          ],
          [
            'target',
            `${manifest.compile.backend}, ${manifest.compile.target.cpu} (${manifest.compile.target.arch}), ONNX Runtime ${manifest.versions.onnxruntime}`,
          ],
          ['files', `${fileRows.join(', ')}; ${formatBytes(total)} in all`],
          [
            'time',
            `${formatMs(result.durationMs)} (cache ${result.cache}${result.cache === 'off' ? '' : `, key ${result.cacheKey.slice(0, 12)}`})`,
          ],
        ]) +
        '\n',
    );
  },
});

function invalidFlag(flag: string, rule: string, value: string): never {
  throw new KilnError('KILN_ERR_CLI_INVALID_FLAG', { flag, rule, value });
}
