import { basename, resolve } from 'node:path';
import { Progress } from '../../core/log.js';
import { hubModelFor, pullModel } from '../../hub/pull.js';
import { SUPPORTED_ARCHITECTURES } from '../../import/architectures.js';
import { importCheckpoint } from '../../import/import.js';
import { formatBytes, formatCount, formatMs, table } from '../format.js';
import { hubFlags, hubOptions } from '../hub-flags.js';
import { defineCommand, nonEmpty } from '../table.js';

export const importCommand = defineCommand({
  name: 'import',
  summary: 'Turn a Hugging Face checkpoint (safetensors) into an ONNX model folder, no Python.',
  description:
    `Reads config.json and the weights (model.safetensors, or model.safetensors.index.json and its shards; F32, F16 or BF16) ` +
    `and writes a Hugging Face-layout folder with onnx/model.onnx plus the config and tokenizer files, ready for kiln compile. ` +
    `Tensors are streamed one at a time, so memory stays far below the checkpoint size. Architectures: ${SUPPORTED_ARCHITECTURES.join(', ')}. ` +
    `kiln compile also accepts the checkpoint folder directly and imports it on the way (through the cache).`,
  positionals: [
    {
      name: 'HF_DIR',
      description:
        'A checkpoint folder: config.json, model.safetensors (or an index and shards), tokenizer.json; or a Hub model, hf:ORG/NAME[@REVISION], whose safetensors weights are pulled.',
      required: true,
    },
  ],
  flags: {
    out: {
      type: 'string',
      short: 'o',
      arg: 'OUT_DIR',
      description: 'Folder to write.',
      default: null as string | null,
      defaultText: '<HF_DIR>-onnx',
      parse: nonEmpty,
    },
    json: { type: 'boolean', description: 'Print the result as one JSON object.', default: false },
    token: hubFlags.token,
    offline: hubFlags.offline,
  },
  examples: [
    {
      command: 'kiln import ./my-bert-checkpoint',
      note: 'write ./my-bert-checkpoint-onnx/onnx/model.onnx and its config and tokenizer',
    },
    {
      command: 'kiln import ./roberta-sentiment -o ./roberta-sentiment-onnx && kiln compile ./roberta-sentiment-onnx',
      note: 'import, then compile the result',
    },
  ],
  async run({ positionals, flags }) {
    const given = positionals.HF_DIR![0]!;
    const model = await hubModelFor(given);
    const dir = model
      ? (await pullModel(model, { ...hubOptions({ ...flags, weights: 'safetensors' }), quiet: flags.json })).dir
      : given;
    const out = resolve(flags.out ?? (model ? `${model.repo.split('/').pop()}-onnx` : `${resolve(dir)}-onnx`));
    const started = performance.now();
    const progress = new Progress({ quiet: flags.json });
    progress.step('importing');
    const result = await importCheckpoint({
      dir,
      out,
      onTensor: (done, total) => progress.tick(done, total, 'tensors'),
    });
    const ms = performance.now() - started;
    if (flags.json) {
      process.stdout.write(
        `${JSON.stringify({ out: result.out, architecture: result.config.architecture, parameters: result.parameters, tensors: result.tensors, checkpointBytes: result.checkpointBytes, durationMs: Math.round(ms) })}\n`,
      );
      return;
    }
    const c = result.config;
    process.stdout.write(
      `imported ${given} → ${basename(out)}/onnx/model.onnx\n` +
        table([
          [
            'architecture',
            `${c.architecture}: ${c.layers} layers, hidden ${c.hidden}, ${c.heads} heads, FFN ${c.intermediate}, ${c.activation}`,
          ],
          [
            'parameters',
            `${formatCount(result.parameters)} in ${result.tensors} tensors (checkpoint ${formatBytes(result.checkpointBytes)})`,
          ],
          ['time', formatMs(ms)],
          ['next', `kiln compile ${out}`],
        ]) +
        '\n',
    );
  },
});
