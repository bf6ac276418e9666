import { basename, dirname, extname, resolve } from 'node:path';
import { loadModel } from '../../api/open.js';
import { KilnError } from '../../core/errors.js';
import { Progress } from '../../core/log.js';
import { runBatch, type Shard } from '../../deploy/batch.js';
import { writeNpyFromJsonl } from '../../deploy/npy.js';
import { readImageFile } from '../../model/image-files.js';
import { taskOf, tasksWhere } from '../../tasks/registry.js';
import { compileNotice } from '../compile-notice.js';
import { noticeAutoDevice } from '../device-flag.js';
import { hubFlags, hubOptions } from '../hub-flags.js';
import { runtimeFlags, runtimeOptions } from '../runtime-flags.js';
import { choice, defineCommand, integer, nonEmpty, nullFlag, valueFlag } from '../table.js';

function shardFlag(raw: string, flag: string): Shard {
  const match = /^(\d+)\/(\d+)$/.exec(raw.trim());
  const index = match ? Number(match[1]) : NaN;
  const count = match ? Number(match[2]) : NaN;
  if (!(count >= 1 && index >= 0 && index < count)) {
    throw new KilnError('KILN_ERR_CLI_INVALID_FLAG', {
      flag,
      rule: 'I/N with 0 ≤ I < N, such as 0/4 (the first of four shards)',
      value: raw,
    });
  }
  return { index, count };
}

/** Rows sorted by length together, unless --window says otherwise. */
const TEXT_WINDOW = 4096;
/** A window of images holds their files in memory: 64 photos of 5 MB is 320 MB, 4096 would be 20 GB. */
const IMAGE_WINDOW = 64;

export const batchCommand = defineCommand({
  name: 'batch',
  summary: 'Classify a large file offline: one JSON line per row, resumable, shardable.',
  description:
    'Streams INPUT (TSV/CSV with a sentence or text column, JSONL, or one text per line), sorts rows by length ' +
    'within windows so batches pad little, and writes one JSON line per input row, in input order: ' +
    '{"line","id"?,"label","score"}, or {"line","error":{"code","message"}} for a row that cannot be classified (the job ' +
    'goes on). Killed at any moment, the same command continues where the output ends, with no row lost or ' +
    'repeated. --shard I/N takes every N-th row starting at I, so N machines cover the file exactly once. Uses the ' +
    'tuned layout unless the runtime flags say otherwise.',
  positionals: [
    { name: 'ARTIFACT', description: 'A compiled artifact folder, or a SOURCE to compile first.', required: true },
    { name: 'INPUT', description: 'The file of texts.', required: true },
  ],
  flags: {
    out: nullFlag({
      short: 'o',
      arg: 'OUTPUT.jsonl',
      description: 'Where to write the predictions (appended to when resuming).',
      defaultText: '<INPUT name>.predictions[.shard-I-of-N].jsonl',
      parse: nonEmpty,
    }),
    shard: nullFlag({
      arg: 'I/N',
      description: 'Process shard I (from 0) of N.',
      defaultText: 'all rows',
      parse: shardFlag,
    }),
    'text-column': nullFlag({
      arg: 'C',
      description: 'The column (TSV/CSV) or field (JSONL) holding the text.',
      defaultText: 'sentence or text',
      parse: nonEmpty,
    }),
    window: nullFlag({
      arg: 'N',
      description:
        "Rows read and sorted by length together; bounds memory (an image model holds each row's file bytes).",
      defaultText: `${TEXT_WINDOW} (${IMAGE_WINDOW} for image models)`,
      parse: integer(1, 1_000_000),
    }),
    restart: { type: 'boolean', description: 'Start over instead of continuing an existing output.', default: false },
    redact: {
      type: 'boolean',
      description:
        'Token classifiers (NER): also write each text with every entity replaced by [LABEL] ("redacted"), a PII scrubber over the file.',
      default: false,
    },
    format: valueFlag({
      arg: 'F',
      description:
        'jsonl, or npy for embedding models: also write the vectors as one float32 [rows, dimension] .npy beside the JSON Lines (failed rows are NaN).',
      default: 'jsonl',
      parse: choice<'jsonl' | 'npy'>(['jsonl', 'npy']),
    }),
    ...runtimeFlags,
    ...hubFlags,
  },
  examples: [
    {
      command: 'kiln batch sentiment.kiln reviews.tsv -o reviews.predictions.jsonl',
      note: 'classify every row; rerun the same command to continue after an interruption',
    },
    {
      command: 'kiln batch sentiment.kiln s3-copy/reviews.jsonl --shard 2/8',
      note: 'the third of eight shards (one per machine or Kubernetes Job index)',
    },
  ],
  async run({ positionals, flags }) {
    const input = positionals.INPUT![0]!;
    const shardSuffix = flags.shard ? `.shard-${flags.shard.index}-of-${flags.shard.count}` : '';
    const output = resolve(flags.out ?? `${basename(input, extname(input))}.predictions${shardSuffix}.jsonl`);
    const model = await loadModel({
      model: positionals.ARTIFACT![0]!,
      onCompile: compileNotice,
      hub: hubOptions(flags),
      ...runtimeOptions(flags),
    });
    noticeAutoDevice(flags.device, model.layout.device, 'batch');
    const task = taskOf(model);
    const npyWidth = task.batch.npyWidth;
    if (flags.format === 'npy' && !npyWidth) {
      await model.close();
      throw new KilnError('KILN_ERR_CLI_INVALID_FLAG', {
        flag: '--format',
        rule: `npy only for embedding models (this one is ${model.task}); use jsonl`,
        value: flags.format,
      });
    }
    if (flags.redact && !task.answers.redacts) {
      await model.close();
      throw new KilnError('KILN_ERR_CLI_INVALID_FLAG', {
        flag: '--redact',
        rule: `used with models that find entities (${tasksWhere((m) => m.answers.redacts === true).join(', ')}); this one is ${model.task}`,
        value: 'true',
      });
    }
    const progress = new Progress();
    progress.step(task.batch.verb);
    try {
      const s = await runBatch({
        model,
        input,
        output,
        shard: flags.shard ?? undefined,
        textColumn: flags['text-column'] ?? undefined,
        window: flags.window ?? (task.input === 'image' ? IMAGE_WINDOW : TEXT_WINDOW),
        restart: flags.restart,
        redact: flags.redact,
        onProgress: (p) => progress.tick(p.line, p.lines, 'lines'),
        // Image models: each line names an image file, relative to the input file's folder.
        ...(task.input === 'image'
          ? { readInput: (line: string) => readImageFile(resolve(dirname(input), line.trim()), 'the image') }
          : {}),
      });
      const labels =
        Object.entries(s.labels)
          .map(([label, n]) => `${label} ${n}`)
          .join(', ') || 'none';
      process.stderr.write(
        `kiln batch: ${s.rows} rows in ${output}${s.resumed ? ` (${s.resumed} from an earlier run)` : ''}; ${s.errors} errors; ` +
          `${task.batch.summary(model, labels)}; ${s.seconds.toFixed(1)} s, ${s.rowsPerSecond.toFixed(1)} rows/s\n`,
      );
      if (flags.format === 'npy' && npyWidth) {
        const npy = `${output.replace(/\.jsonl$/, '')}.npy`;
        const width = npyWidth(model);
        const written = await writeNpyFromJsonl(output, npy, width);
        process.stderr.write(
          `kiln batch: wrote ${npy}: float32 [${written.rows}, ${width}]${written.failedLines.length ? `; NaN rows for failed lines ${written.failedLines.slice(0, 10).join(', ')}${written.failedLines.length > 10 ? ' …' : ''}` : ''}\n`,
        );
      }
    } finally {
      await model.close();
    }
  },
});
