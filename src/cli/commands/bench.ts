import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadModel, resolveArtifact } from '../../api/open.js';
import { BENCH_DEFAULTS, BENCH_MODES, type BenchMode, bench, meanInputSize } from '../../bench/bench.js';
import { renderReport } from '../../bench/report.js';
import type { BenchResult } from '../../bench/result.js';
import { Progress } from '../../core/log.js';
import { readArtifact } from '../../model/artifact.js';
import { inputOf, readDataset } from '../../model/dataset.js';
import { imagePaths, readImageFile } from '../../model/image-files.js';
import type { ModelInput } from '../../runtime/task-model.js';
import { taskOf, taskOfManifest } from '../../tasks/registry.js';
import { PACKAGE_ROOT } from '../../version.js';
import { compileNotice } from '../compile-notice.js';
import { noticeAutoDevice } from '../device-flag.js';
import { batchTokensNote, formatMs, wideNote } from '../format.js';
import { hubFlags, hubOptions } from '../hub-flags.js';
import { runtimeFlags, runtimeOptions } from '../runtime-flags.js';
import { choice, defineCommand, integer, nonEmpty, nullFlag, valueFlag } from '../table.js';

const MODES = ['all', ...BENCH_MODES] as const;
type Mode = (typeof MODES)[number];

function integerList(min: number, max: number): (raw: string, flag: string) => number[] {
  const one = integer(min, max);
  return (raw, flag) => raw.split(',').map((v) => one(v.trim(), flag));
}

function positiveNumber(raw: string, flag: string): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) return integer(1, 0)(raw, flag);
  return value;
}

/** `baseline`, or its alias `seed` (accepted, not shown in help). */
function compareFlag(raw: string, flag: string): 'baseline' {
  return raw === 'seed' ? 'baseline' : choice<'baseline'>(['baseline'])(raw, flag);
}

export const DEFAULT_DATA = join(PACKAGE_ROOT, 'data', 'sst2', 'dev.tsv');

export const benchCommand = defineCommand({
  name: 'bench',
  summary: 'Measure latency, throughput and concurrency of a model (or a running server).',
  description:
    'Warms up, then runs the modes: latency (one request at a time: avg, p50, p90, p99, max), throughput (offline: ' +
    'all texts at once, sorted by length, for each max batch in --batches), and concurrency (closed-loop clients at ' +
    'each level of --concurrency, through the scheduler or, with --url, through HTTP). Percentiles come from an HDR ' +
    'histogram. Prints a table; --json and --report write the results; --price-per-hour turns the best throughput ' +
    'into a cost per million inferences; --compare baseline also times the baseline (every text padded to max ' +
    'length, batch 1, one replica on every core) and prints the speedup.',
  positionals: [
    { name: 'ARTIFACT', description: 'A compiled artifact folder, or a SOURCE to compile first.', required: true },
  ],
  flags: {
    data: valueFlag({
      arg: 'FILE',
      description: 'Texts to send: TSV/CSV with a sentence or text column, JSONL, or one per line.',
      default: DEFAULT_DATA,
      defaultText: 'the bundled SST-2 dev sentences',
      parse: nonEmpty,
    }),
    mode: valueFlag<Mode>({
      arg: 'MODE',
      description: `One of ${MODES.join(', ')}.`,
      default: 'all',
      parse: choice(MODES),
    }),
    requests: valueFlag({
      arg: 'N',
      description: 'Requests in the latency mode.',
      default: BENCH_DEFAULTS.requests,
      parse: integer(1, 1_000_000),
    }),
    batches: valueFlag({
      arg: 'B1,B2,…',
      description: 'Max batch sizes of the throughput sweep.',
      default: BENCH_DEFAULTS.batches,
      parse: integerList(1, 1024),
    }),
    concurrency: valueFlag({
      arg: 'C1,C2,…',
      description: 'Concurrent clients of the concurrency sweep.',
      default: BENCH_DEFAULTS.concurrency,
      parse: integerList(1, 4096),
    }),
    'duration-s': valueFlag({
      arg: 'S',
      description: 'Seconds per concurrency level.',
      default: BENCH_DEFAULTS.durationS,
      parse: integer(1, 3600),
    }),
    warmup: valueFlag({
      arg: 'N',
      description: 'Untimed requests before measuring.',
      default: BENCH_DEFAULTS.warmup,
      parse: integer(0, 100_000),
    }),
    url: nullFlag({
      arg: 'URL',
      description: 'Send latency and concurrency requests to a kiln server (POST URL/predict) instead of in process.',
      parse: nonEmpty,
    }),
    'api-key': nullFlag({
      arg: 'KEY',
      env: 'KILN_API_KEY',
      description: 'API key for --url.',
      parse: nonEmpty,
    }),
    json: nullFlag({
      arg: 'FILE',
      description: 'Write all results as JSON.',
      parse: nonEmpty,
    }),
    report: nullFlag({
      arg: 'FILE.html',
      description: 'Write a self-contained HTML report (charts, histograms, settings).',
      parse: nonEmpty,
    }),
    'price-per-hour': nullFlag({
      arg: 'USD',
      description: 'Instance price, to print the cost per million inferences at the best throughput.',
      parse: positiveNumber,
    }),
    compare: nullFlag({
      arg: 'baseline',
      description:
        'Also time the baseline (every text padded to max length, batch 1, one replica on every core) and print the speedup.',
      parse: compareFlag,
    }),
    ...runtimeFlags,
    ...hubFlags,
  },
  examples: [
    {
      command: 'kiln bench models/sst2-distilbert-tiny --price-per-hour 0.17 --compare baseline',
      note: 'all modes on the embedded model, with cost and the speedup over the baseline',
    },
    {
      command:
        'kiln bench sentiment.kiln --mode concurrency --concurrency 1,8,32 --url http://127.0.0.1:8080 --report bench.html',
      note: 'load a running server over HTTP and write an HTML report',
    },
  ],
  async run({ positionals, flags }) {
    const artifactArg = positionals.ARTIFACT![0]!;
    const artifact = await resolveArtifact(artifactArg, {
      onCompile: compileNotice,
      hub: hubOptions(flags),
      device: flags.device,
    });
    // Image models: --data is a folder of images or a file of image paths.
    const { manifest } = await readArtifact(artifact, { verify: false });
    const images = taskOfManifest(artifact, manifest).input === 'image';
    const paths = images ? await imagePaths(flags.data) : [];
    const inputs: ModelInput[] = images
      ? await Promise.all(paths.map((p, i) => readImageFile(p, `image ${i + 1} of ${flags.data}`)))
      : (await readDataset(flags.data)).examples.map(inputOf);
    const model = await loadModel({ model: artifact, ...runtimeOptions(flags) });
    noticeAutoDevice(flags.device, model.layout.device, 'bench');
    const progress = new Progress();
    try {
      const out = process.stdout;
      const m = model.manifest;
      const l = model.layout;
      const noun = images
        ? 'images'
        : inputs.some((i) => typeof i === 'object' && 'text_pair' in i)
          ? 'pairs'
          : 'texts';
      const data = flags.data === DEFAULT_DATA ? 'data/sst2/dev.tsv' : flags.data;
      const size = images
        ? ` (${m.image!.height} × ${m.image!.width})`
        : ` (mean ${meanInputSize(model, inputs).toFixed(1)} tokens)`;
      out.write(
        `kiln bench ${artifactArg}: ${m.name}${m.synthetic ? ' (SYNTHETIC weights)' : ''}; ${inputs.length} ${noun} from ${data}${size}\n` +
          `  device ${l.device}; ${l.replicas} replica(s) × ${l.threadsPerReplica} thread(s)${wideNote(l.wideThreads)}, max batch ${l.maxBatch}, max delay ${l.maxDelayMs} ms${batchTokensNote(l.maxBatchTokens)}, buckets ${l.buckets.join(',')}${flags.url ? `; requests to ${flags.url}` : ''}\n`,
      );
      // What one inference makes: a label for a text, a vector, or a label for an image.
      // A text task's inputs read as pairs are counted as pairs (a pair classifier's pairs/s).
      const unit = noun === 'pairs' ? taskOf(model).bench.unit.replace(/^texts\//, 'pairs/') : taskOf(model).bench.unit;
      const wording = { unit, noun, images, overHttp: flags.url !== null, durationS: flags['duration-s'] };
      const result = await bench({
        model,
        inputs,
        dataPath: flags.data,
        modes: flags.mode === 'all' ? BENCH_MODES : [flags.mode],
        requests: flags.requests,
        batches: flags.batches,
        concurrency: flags.concurrency,
        durationS: flags['duration-s'],
        warmup: flags.warmup,
        url: flags.url,
        apiKey: flags['api-key'],
        pricePerHour: flags['price-per-hour'],
        compareBaseline: flags.compare === 'baseline',
        onProgress: (label, done, total) => progress.tick(done, total, label),
        onMeasured: (mode, r) => out.write(MODE_LINES[mode](r, wording)),
      });
      if (result.best) out.write(`best: ${result.best.textsPerSecond.toFixed(1)} ${unit} (${result.best.mode})\n`);
      if (result.cost)
        out.write(
          `cost: $${result.cost.perMillion.toFixed(4)} per million inferences at $${result.cost.pricePerHour}/h\n`,
        );
      if (result.compare)
        out.write(
          `baseline (padded to ${m.limits.maxLength}, batch 1, one replica): ${result.compare.baselineTextsPerSecond.toFixed(1)} ${unit}; kiln is ${result.compare.speedup.toFixed(1)}× faster\n`,
        );
      if (flags.json) await writeFile(flags.json, `${JSON.stringify(result, null, 2)}\n`);
      if (flags.report) {
        await writeFile(flags.report, renderReport(result));
        process.stderr.write(`kiln bench: wrote ${flags.report}\n`);
      }
    } finally {
      await model.close();
    }
  },
});

/** What the printed lines say besides the figures. */
interface Wording {
  unit: string;
  noun: string;
  images: boolean;
  overHttp: boolean;
  durationS: number;
}

/** The lines each measurement prints once it ends. */
const MODE_LINES: Record<BenchMode, (result: Readonly<BenchResult>, w: Wording) => string> = {
  latency: ({ latency: l }) =>
    `latency, one request at a time (${l!.count} requests): avg ${formatMs(l!.avgMs)}  p50 ${formatMs(l!.p50Ms)}  p90 ${formatMs(l!.p90Ms)}  p99 ${formatMs(l!.p99Ms)}  max ${formatMs(l!.maxMs)}\n`,
  throughput: ({ throughput }, w) =>
    `throughput, offline (all ${w.noun} at once${w.images ? '' : ', sorted by length'}):\n  batch  ${w.unit.padStart(7)}   fill\n` +
    throughput!
      .map(
        (p) =>
          `  ${String(p.batch).padStart(5)}  ${p.textsPerSecond.toFixed(1).padStart(7)}  ${(p.fill * 100).toFixed(0).padStart(4)} %\n`,
      )
      .join(''),
  concurrency: ({ concurrency }, w) =>
    `concurrency, closed loop (${w.durationS} s per level${w.overHttp ? ', over HTTP' : ''}):\n  clients    req/s   p50 ms   p90 ms   p99 ms  avg batch\n` +
    concurrency!
      .map(
        (p) =>
          `  ${String(p.clients).padStart(7)}  ${p.requestsPerSecond.toFixed(1).padStart(7)}  ${p.latency.p50Ms.toFixed(2).padStart(7)}  ${p.latency.p90Ms.toFixed(2).padStart(7)}  ${p.latency.p99Ms.toFixed(2).padStart(7)}  ${w.overHttp ? '      –' : p.avgBatch.toFixed(1).padStart(9)}\n`,
      )
      .join(''),
};
