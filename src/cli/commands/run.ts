import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { loadModel, resolveArtifact } from '../../api/open.js';
import { KilnError } from '../../core/errors.js';
import { pathKind } from '../../core/fs.js';
import { Progress, warnOnce } from '../../core/log.js';
import { readArtifact } from '../../model/artifact.js';
import { readImageFile } from '../../model/image-files.js';
import type { ModelInput } from '../../runtime/task-model.js';
import { taskOfManifest, tasksWhere } from '../../tasks/registry.js';
import { compileNotice } from '../compile-notice.js';
import { deviceFlag, noticeAutoDevice } from '../device-flag.js';
import { formatMs, percentile } from '../format.js';
import { hubFlags, hubOptions } from '../hub-flags.js';
import { defineCommand, nonEmpty } from '../table.js';

/** Untimed inferences before measuring: one-time costs (memory arenas, first allocations) stay out of the latencies. */
const WARMUP_RUNS = 3;

export const runCommand = defineCommand({
  name: 'run',
  summary:
    'Run a model on texts or images one at a time (labels, embeddings, entities, answers) and report each latency.',
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
    pair: {
      type: 'boolean',
      description:
        'Text pairs (query and passage, premise and hypothesis; a question-answering model\'s question and context; a zero-shot model\'s text and comma-separated candidate labels): TEXT arguments are read two at a time, the first of each two as "text" and the second as "text_pair", and each line of -f as text, a tab, then text_pair.',
      default: false,
    },
    redact: {
      type: 'boolean',
      description:
        'Token classifiers (NER): also print each text with every entity replaced by [LABEL] ("redacted" with --json).',
      default: false,
    },
    json: {
      type: 'boolean',
      description:
        'Print only JSON lines, one per text: {"text","label","score","logits","latencyMs"}, or "embedding" for embedders; images: {"image","label","score","labels","logits","latencyMs"}, labels being the top 5; rerankers, token classifiers, zero-shot and question answering: the fields of their /predict answer ("score","logit"; "entities"; "sequence","labels","scores"; "answer","score","start","end").',
      default: false,
    },
    ...deviceFlag,
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
    {
      command: 'kiln run nli.kiln --pair "A man is eating." "Someone eats food."',
      note: 'one text pair (premise, hypothesis) through a pair classifier',
    },
  ],
  async run({ positionals, flags }) {
    const texts: Array<{ text: string; pair?: string; where: string }> = [];
    const args = positionals.TEXT ?? [];
    if (flags.pair && args.length % 2 === 1)
      throw new KilnError('KILN_ERR_INPUT_PAIR_INCOMPLETE', {
        where: `TEXT argument ${args.length}`,
        problem: `--pair reads TEXT arguments two at a time, and there are ${args.length}`,
      });
    for (let i = 0; i < args.length; i += flags.pair ? 2 : 1) {
      const where = flags.pair ? `TEXT arguments ${i + 1} and ${i + 2}` : `TEXT argument ${i + 1}`;
      texts.push({ text: args[i]!, pair: flags.pair ? args[i + 1]! : undefined, where });
    }
    if (flags.file) {
      if ((await pathKind(flags.file)) !== 'file')
        throw new KilnError('KILN_ERR_INPUT_FILE_NOT_FOUND', { path: flags.file });
      const lines = (await readFile(flags.file, 'utf8')).split(/\r?\n/);
      if (lines.at(-1) === '') lines.pop();
      for (const [i, line] of lines.entries()) {
        const where = `line ${i + 1} of ${flags.file}`;
        const tab = line.indexOf('\t');
        if (!flags.pair) texts.push({ text: line, where });
        else if (tab >= 0) texts.push({ text: line.slice(0, tab), pair: line.slice(tab + 1), where });
        else
          throw new KilnError('KILN_ERR_INPUT_PAIR_INCOMPLETE', {
            where,
            problem: 'with --pair each line is text, a tab, then text_pair, and it has no tab',
          });
      }
    }
    if (texts.length === 0) throw new KilnError('KILN_ERR_INPUT_NO_TEXTS', {});
    // Reject empty texts before loading anything: the error names the text, and nothing runs.
    for (const t of texts)
      if (t.text.trim() === '' || t.pair?.trim() === '')
        throw new KilnError('KILN_ERR_INPUT_EMPTY_TEXT', { where: t.where });

    const artifact = await resolveArtifact(positionals.ARTIFACT![0]!, {
      onCompile: flags.json ? undefined : compileNotice,
      hub: { ...hubOptions(flags), quiet: flags.json },
      device: flags.device,
    });
    const { manifest } = await readArtifact(artifact, { verify: false });
    const task = taskOfManifest(artifact, manifest);
    const images = task.input === 'image';
    if (flags.redact && !task.answers.redacts)
      throw new KilnError('KILN_ERR_CLI_INVALID_FLAG', {
        flag: '--redact',
        rule: `used with models that find entities (${tasksWhere((m) => m.answers.redacts === true).join(', ')}); this one is ${manifest.task}`,
        value: 'true',
      });
    // Image models read the files before loading replicas: a missing one fails fast.
    const inputs: ModelInput[] = images
      ? await Promise.all(texts.map((t) => readImageFile(t.text, t.where)))
      : texts.map((t) => (t.pair === undefined ? t.text : { text: t.text, text_pair: t.pair }));
    // One replica using every core: the lowest latency for one request at a time.
    const model = await loadModel({
      model: artifact,
      device: flags.device,
      replicas: 1,
      threadsPerReplica: availableParallelism(),
    });
    noticeAutoDevice(flags.device, model.layout.device, 'run');
    try {
      for (let i = 0; i < WARMUP_RUNS; i += 1) await model.infer([inputs[0]!]);
      const progress = new Progress({ quiet: flags.json || texts.length < 200 });
      const latencies: number[] = [];
      for (const [index, { text, pair, where }] of texts.entries()) {
        const started = performance.now();
        const prediction = (await model.infer([inputs[index]!], () => where, flags.redact ? { redact: true } : {}))[0]!;
        const latencyMs = performance.now() - started;
        latencies.push(latencyMs);
        if ('truncated' in prediction && prediction.truncated) {
          warnOnce(
            'truncated',
            `${where} is longer than the artifact's max length (${model.manifest.limits.maxLength} tokens) and was truncated; later truncations are not reported`,
          );
        }
        const named = images ? { image: text } : pair === undefined ? { text } : { text, text_pair: pair };
        const shown = pair === undefined ? text : `${text}  |  ${pair}`;
        process.stdout.write(
          `${flags.json ? JSON.stringify({ ...named, ...task.answers.json(prediction), latencyMs }) : `${task.answers.line(prediction)}  ${formatMs(latencyMs).padStart(9)}  ${shown}`}\n`,
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
