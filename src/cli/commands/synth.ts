import { resolve } from 'node:path';
import { Progress } from '../../core/log.js';
import { PRESETS, synthesize } from '../../import/synth.js';
import { formatCount, formatMs, table } from '../format.js';
import { choice, defineCommand, integer, nonEmpty } from '../table.js';

const WEIGHT_FORMATS = ['safetensors', 'onnx'] as const;

export const synthCommand = defineCommand({
  name: 'synth',
  summary: 'Make a full-size model with a public architecture and random weights, for benchmarks.',
  description:
    `Writes a Hugging Face-layout folder with the exact architecture of a public model and deterministic random weights ` +
    `(the same seed gives the same bytes), the embedded bert-base-uncased tokenizer, and a config.json that says the ` +
    `weights are synthetic; compile, run and the benchmarks use it like any model, but its predictions are meaningless. ` +
    `Presets: ${Object.keys(PRESETS).join(', ')}.`,
  positionals: [{ name: 'PRESET', description: `One of ${Object.keys(PRESETS).join(', ')}.`, required: true }],
  flags: {
    out: { type: 'string', short: 'o', arg: 'OUT_DIR', description: 'Folder to write.', default: null as string | null, defaultText: '<PRESET>-synthetic', parse: nonEmpty },
    seed: { type: 'string', arg: 'N', description: 'Seed of the random weights.', default: 0, parse: integer(0, 2147483647) },
    labels: { type: 'string', arg: 'N', description: 'Number of classes of the classifier head.', default: 2, parse: integer(2, 1000) },
    weights: {
      type: 'string',
      arg: 'FORMAT',
      description: 'safetensors writes a checkpoint (compile imports it); onnx writes onnx/model.onnx directly.',
      default: 'safetensors' as (typeof WEIGHT_FORMATS)[number],
      parse: choice<(typeof WEIGHT_FORMATS)[number]>(WEIGHT_FORMATS),
    },
  },
  examples: [
    { command: 'kiln synth distilbert-base-uncased', note: 'a 66M-parameter DistilBERT checkpoint in ./distilbert-base-uncased-synthetic' },
    { command: 'kiln synth bert-large-uncased --weights onnx -o /tmp/bert-large && kiln compile /tmp/bert-large', note: 'BERT-large straight to ONNX, then compile it' },
  ],
  async run({ positionals, flags }) {
    const preset = positionals.PRESET![0]!;
    const out = resolve(flags.out ?? `${preset}-synthetic`);
    const started = performance.now();
    const progress = new Progress();
    progress.step('writing random weights');
    const result = await synthesize({ preset, out, seed: flags.seed, labels: flags.labels, weights: flags.weights, onTensor: (done, total) => progress.tick(done, total, 'tensors') });
    const c = result.config;
    process.stdout.write(
      `synthesized ${preset} → ${out}\n` +
        table([
          ['architecture', `${c.architecture}: ${c.layers} layers, hidden ${c.hidden}, ${c.heads} heads, FFN ${c.intermediate}`],
          ['parameters', `${formatCount(result.parameters)} (${result.parameters.toLocaleString('en-US')}), random (seed ${flags.seed}): predictions are meaningless`],
          ['weights', flags.weights === 'onnx' ? 'onnx/model.onnx' : 'model.safetensors (F32)'],
          ['time', formatMs(performance.now() - started)],
          ['next', `kiln compile ${out}`],
        ]) +
        '\n',
    );
  },
});
