import { resolve } from 'node:path';
import { KilnError } from '../../core/errors.js';
import { Progress } from '../../core/log.js';
import { PRESETS, synthesize } from '../../import/synth.js';
import { synthesizeVision, VISION_PRESETS } from '../../import/synth-vision.js';
import { formatCount, formatMs, table } from '../format.js';
import { choice, defineCommand, integer, nonEmpty } from '../table.js';

const WEIGHT_FORMATS = ['safetensors', 'onnx'] as const;
const ALL_PRESETS = [...Object.keys(PRESETS), ...Object.keys(VISION_PRESETS)];

export const synthCommand = defineCommand({
  name: 'synth',
  summary: 'Make a full-size model with a public architecture and random weights, for benchmarks.',
  description:
    `Writes a Hugging Face-layout folder with the exact architecture of a public model and deterministic random weights ` +
    `(the same seed gives the same bytes), the embedded bert-base-uncased tokenizer (text presets) or the public ` +
    `preprocessor_config.json (image presets), and a config.json that says the weights are synthetic; compile, run and ` +
    `the benchmarks use it like any model, but its predictions are meaningless. ` +
    `Text presets: ${Object.keys(PRESETS).join(', ')}. Image presets (onnx/model.onnx, input pixel_values [batch, 3, 224, 224]): ${Object.keys(VISION_PRESETS).join(', ')}.`,
  positionals: [{ name: 'PRESET', description: `One of ${ALL_PRESETS.join(', ')}.`, required: true }],
  flags: {
    out: {
      type: 'string',
      short: 'o',
      arg: 'OUT_DIR',
      description: 'Folder to write.',
      default: null as string | null,
      defaultText: '<PRESET>-synthetic',
      parse: nonEmpty,
    },
    seed: {
      type: 'string',
      arg: 'N',
      description: 'Seed of the random weights.',
      default: 0,
      parse: integer(0, 2147483647),
    },
    labels: {
      type: 'string',
      arg: 'N',
      description:
        'Number of classes of the classifier head; 1 makes a cross-encoder with one relevance logit, which compile detects as a reranker (text-ranking; not all-minilm-l6, a headless BertModel).',
      default: null as number | null,
      defaultText: '2; image presets: 1000',
      parse: integer(1, 1000),
    },
    weights: {
      type: 'string',
      arg: 'FORMAT',
      description: 'safetensors writes a checkpoint (compile imports it); onnx writes onnx/model.onnx directly.',
      default: null as (typeof WEIGHT_FORMATS)[number] | null,
      defaultText: 'safetensors; image presets: onnx only',
      parse: choice<(typeof WEIGHT_FORMATS)[number]>(WEIGHT_FORMATS),
    },
  },
  examples: [
    {
      command: 'kiln synth distilbert-base-uncased',
      note: 'a 66M-parameter DistilBERT checkpoint in ./distilbert-base-uncased-synthetic',
    },
    {
      command: 'kiln synth bert-large-uncased --weights onnx -o /tmp/bert-large && kiln compile /tmp/bert-large',
      note: 'BERT-large straight to ONNX, then compile it',
    },
    {
      command: 'kiln synth distilbert-base-uncased --labels 1 -o reranker && kiln compile reranker',
      note: 'a DistilBERT cross-encoder with one relevance logit, which compile detects as a reranker (text-ranking)',
    },
    {
      command: 'kiln synth resnet-50 -o /tmp/resnet-50',
      note: 'ResNet-50 v1.5 (25.6M parameters, 1000 classes) as onnx/model.onnx',
    },
  ],
  async run({ positionals, flags }) {
    const preset = positionals.PRESET![0]!;
    if (!ALL_PRESETS.includes(preset))
      throw new KilnError('KILN_ERR_SYNTH_UNKNOWN_PRESET', { preset, known: ALL_PRESETS.join(', ') });
    const out = resolve(flags.out ?? `${preset}-synthetic`);
    const started = performance.now();
    const progress = new Progress();
    progress.step('writing random weights');
    const onTensor = (done: number, total: number): void => progress.tick(done, total, 'tensors');
    let rows: Array<[string, string]>;
    if (VISION_PRESETS[preset]) {
      if (flags.weights === 'safetensors')
        throw new KilnError('KILN_ERR_CLI_INVALID_FLAG', {
          flag: '--weights',
          rule: `onnx for the image preset ${preset} (image presets write onnx/model.onnx only)`,
          value: flags.weights,
        });
      const result = await synthesizeVision({
        preset,
        out,
        seed: flags.seed,
        labels: flags.labels ?? undefined,
        onTensor,
      });
      rows = [
        ['architecture', result.summary],
        [
          'parameters',
          `${formatCount(result.parameters)} (${result.parameters.toLocaleString('en-US')}, batch norm counted before folding), random (seed ${flags.seed}): predictions are meaningless`,
        ],
        ['weights', 'onnx/model.onnx'],
      ];
    } else {
      const weights = flags.weights ?? 'safetensors';
      const result = await synthesize({
        preset,
        out,
        seed: flags.seed,
        labels: flags.labels ?? undefined,
        weights,
        onTensor,
      });
      const c = result.config;
      rows = [
        [
          'architecture',
          `${c.architecture}: ${c.layers} layers, hidden ${c.hidden}, ${c.heads} heads, FFN ${c.intermediate}`,
        ],
        [
          'parameters',
          `${formatCount(result.parameters)} (${result.parameters.toLocaleString('en-US')}), random (seed ${flags.seed}): predictions are meaningless`,
        ],
        ['weights', weights === 'onnx' ? 'onnx/model.onnx' : 'model.safetensors (F32)'],
      ];
    }
    process.stdout.write(
      `synthesized ${preset} → ${out}\n` +
        table([...rows, ['time', formatMs(performance.now() - started)], ['next', `kiln compile ${out}`]]) +
        '\n',
    );
  },
});
