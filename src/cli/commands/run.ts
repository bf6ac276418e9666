import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { loadModel, resolveArtifact } from '../../api/open.js';
import { KilnError } from '../../core/errors.js';
import { pathKind } from '../../core/fs.js';
import { Progress, warnOnce } from '../../core/log.js';
import { readArtifact } from '../../model/artifact.js';
import { readImageFile } from '../../model/image-files.js';
import type { ModelInput } from '../../runtime/task-model.js';
import { taskOfManifest } from '../../tasks/registry.js';
import { compileNotice } from '../compile-notice.js';
import { formatMs, percentile } from '../format.js';
import { hubFlags, hubOptions } from '../hub-flags.js';
import { defineCommand, nonEmpty } from '../table.js';

/** Untimed inferences before measuring: one-time costs (memory arenas, first allocations) stay out of the latencies. */
const WARMUP_RUNS = 3;

export const runCommand = defineCommand({
  name: 'run',
  summary: 'Run a model on texts or images one at a time (labels or embeddings) and report each latency.',
  description:
    'Loads an artifact (or compiles a SOURCE on the fly through the cache), warms it up, then classifies each text ' +
    'alone, one request at a time: one line per text with label, score and latency, and with several ' +
    'texts a last line with count, average, p50 and p99. Texts longer than the max length are truncated (a warning ' +
    'says so once); an empty text is an error. For an image model, each TEXT is the path of ' +
    'a JPEG, PNG or WebP file, and so is each line of the -f file.',
  positionals: [
    {
      name: 'ARTIFACT',
      description: 'A compiled artifact folder, or a SOURCE to compile first (see kiln compile).',
      required: true,
    },
    {
      name: 'TEXT',
      description: 'Texts to classify (quote each one), or image files for an image model.',
      required: false,
      variadic: true,
    },
  ],
  flags: {
    file: {
      type: 'string',
      short: 'f',
      arg: 'F',
      description: 'Read texts (or image paths) from a UTF-8 file, one per line, after any TEXT arguments.',
      default: null as string | null,
      parse: nonEmpty,
    },
    json: {
      type: 'boolean',
      description:
        'Print only JSON lines, one per text: {"text","label","score","logits","latencyMs"}, or "embedding" for embedders; images: {"image","label","score","labels","logits","latencyMs"}, labels being the top 5.',
      default: false,
    },
    ...hubFlags,
  },
  examples: [
    {
      command: 'kiln run models/sst2-distilbert-tiny "I absolutely loved this movie" "The food was cold"',
      note: 'two texts, labels and latencies, then the summary line',
    },
    {
      command: 'kiln run sst2-distilbert-tiny.kiln --file reviews.txt --json > predictions.jsonl',
      note: 'a file of texts, machine-readable output',
    },
    { command: 'kiln run resnet.kiln cat.jpg dog.png', note: 'an image classifier on two image files' },
  ],
  async run({ positionals, flags }) {
    const texts = (positionals.TEXT ?? []).map((text, i) => ({ text, where: `TEXT argument ${i + 1}` }));
    if (flags.file) {
      if ((await pathKind(flags.file)) !== 'file')
        throw new KilnError('KILN_ERR_INPUT_FILE_NOT_FOUND', { path: flags.file });
      const lines = (await readFile(flags.file, 'utf8')).split(/\r?\n/);
      if (lines.at(-1) === '') lines.pop();
      lines.forEach((text, i) => {
        texts.push({ text, where: `line ${i + 1} of ${flags.file}` });
      });
    }
    if (texts.length === 0) throw new KilnError('KILN_ERR_INPUT_NO_TEXTS', {});
    // Reject empty texts before loading anything: the error names the text, and nothing runs.
    for (const t of texts)
      if (t.text.trim() === '') throw new KilnError('KILN_ERR_INPUT_EMPTY_TEXT', { where: t.where });

    const artifact = await resolveArtifact(positionals.ARTIFACT![0]!, {
      onCompile: flags.json ? undefined : compileNotice,
      hub: { ...hubOptions(flags), quiet: flags.json },
    });
    const { manifest } = await readArtifact(artifact, { verify: false });
    const task = taskOfManifest(artifact, manifest);
    const images = task.input === 'image';
    // Image models read the files before loading replicas: a missing one fails fast.
    const inputs: ModelInput[] = images
      ? await Promise.all(texts.map((t) => readImageFile(t.text, t.where)))
      : texts.map((t) => t.text);
    // One replica using every core: the lowest latency for one request at a time.
    const model = await loadModel({ model: artifact, replicas: 1, threadsPerReplica: availableParallelism() });
    try {
      for (let i = 0; i < WARMUP_RUNS; i += 1) await model.infer([inputs[0]!]);
      const progress = new Progress({ quiet: flags.json || texts.length < 200 });
      const latencies: number[] = [];
      for (const [index, { text, where }] of texts.entries()) {
        const started = performance.now();
        const prediction = (await model.infer([inputs[index]!], () => where))[0]!;
        const latencyMs = performance.now() - started;
        latencies.push(latencyMs);
        if ('truncated' in prediction && prediction.truncated) {
          warnOnce(
            'truncated',
            `${where} is longer than the artifact's max length (${model.manifest.limits.maxLength} tokens) and was truncated; later truncations are not reported`,
          );
        }
        const named = images ? { image: text } : { text };
        process.stdout.write(
          `${flags.json ? JSON.stringify({ ...named, ...task.answers.json(prediction), latencyMs }) : `${task.answers.line(prediction)}  ${formatMs(latencyMs).padStart(9)}  ${text}`}\n`,
        );
        progress.tick(index + 1, texts.length, images ? 'images' : 'texts');
      }
      if (!flags.json && texts.length > 1) {
        const sorted = [...latencies].sort((a, b) => a - b);
        const avg = latencies.reduce((a, b) => a + b, 0) / latencies.length;
        process.stdout.write(
          `${texts.length} ${images ? 'images' : 'texts'}  avg ${formatMs(avg)}  p50 ${formatMs(percentile(sorted, 50))}  p99 ${formatMs(percentile(sorted, 99))}\n`,
        );
      }
    } finally {
      await model.close();
    }
  },
});
