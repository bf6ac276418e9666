import { writeFile } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import {
  concurrencySweep,
  costPerMillion,
  latencyRun,
  type Predict,
  seedRecipeThroughput,
  throughputSweep,
} from '../../bench/bench.js';
import { renderReport } from '../../bench/report.js';
import type { BenchResult } from '../../bench/result.js';
import { Progress } from '../../core/log.js';
import { readArtifact } from '../../model/artifact.js';
import { readDataset } from '../../model/dataset.js';
import { imagePaths, readImageFile } from '../../model/image-files.js';
import { RUNTIME_VERSION } from '../../runtime/binding.js';
import { type LoadedModel, loadModel } from '../../runtime/load-model.js';
import type { ModelInput } from '../../runtime/task-model.js';
import { KILN_VERSION, PACKAGE_ROOT } from '../../version.js';
import { formatMs } from '../format.js';
import { hubFlags, hubOptions } from '../hub-flags.js';
import { artifactFromArgument } from '../open-artifact.js';
import { classifierOptions, runtimeFlags } from '../runtime-flags.js';
import { choice, defineCommand, type FlagSpec, integer, nonEmpty } from '../table.js';

const MODES = ['all', 'latency', 'throughput', 'concurrency'] as const;

function integerList(min: number, max: number): (raw: string, flag: string) => number[] {
  const one = integer(min, max);
  return (raw, flag) => raw.split(',').map((v) => one(v.trim(), flag));
}

function positiveNumber(raw: string, flag: string): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) return integer(1, 0)(raw, flag);
  return value;
}

export const DEFAULT_DATA = join(PACKAGE_ROOT, 'data', 'sst2', 'dev.tsv');

export const benchCommand = defineCommand({
  name: 'bench',
  summary: 'Measure latency, throughput and concurrency of a model (or a running server).',
  description:
    "Warms up, then runs the modes: latency (one request at a time: avg, p50, p90, p99, max, like the seed's " +
    'inference.py), throughput (offline: all texts at once, sorted by length, for each max batch in --batches), and ' +
    'concurrency (closed-loop clients at each level of --concurrency, through the scheduler or, with --url, through ' +
    'HTTP). Percentiles come from an HDR histogram. Prints a table; --json and --report write the results; ' +
    '--price-per-hour turns the best throughput into a cost per million inferences; --compare seed also runs the ' +
    "seed's recipe (every text padded to max length, batch 1, one replica) and prints the speedup.",
  positionals: [
    { name: 'ARTIFACT', description: 'A compiled artifact folder, or a SOURCE to compile first.', required: true },
  ],
  flags: {
    data: {
      type: 'string',
      arg: 'FILE',
      description: 'Texts to send: TSV/CSV with a sentence or text column, JSONL, or one per line.',
      default: DEFAULT_DATA,
      defaultText: 'the bundled SST-2 dev sentences',
      parse: nonEmpty,
    },
    mode: {
      type: 'string',
      arg: 'MODE',
      description: `One of ${MODES.join(', ')}.`,
      default: 'all' as (typeof MODES)[number],
      parse: choice<(typeof MODES)[number]>(MODES),
    },
    requests: {
      type: 'string',
      arg: 'N',
      description: 'Requests in the latency mode.',
      default: 500,
      parse: integer(1, 1_000_000),
    },
    batches: {
      type: 'string',
      arg: 'B1,B2,…',
      description: 'Max batch sizes of the throughput sweep.',
      default: [1, 4, 16, 32] as number[],
      defaultText: '1,4,16,32',
      parse: integerList(1, 1024),
    },
    concurrency: {
      type: 'string',
      arg: 'C1,C2,…',
      description: 'Concurrent clients of the concurrency sweep.',
      default: [1, 4, 16, 32] as number[],
      defaultText: '1,4,16,32',
      parse: integerList(1, 4096),
    },
    'duration-s': {
      type: 'string',
      arg: 'S',
      description: 'Seconds per concurrency level.',
      default: 3,
      parse: integer(1, 3600),
    },
    warmup: {
      type: 'string',
      arg: 'N',
      description: 'Untimed requests before measuring.',
      default: 20,
      parse: integer(0, 100_000),
    },
    url: {
      type: 'string',
      arg: 'URL',
      description: 'Send latency and concurrency requests to a kiln server (POST URL/predict) instead of in process.',
      default: null as string | null,
      defaultText: 'none',
      parse: nonEmpty,
    },
    'api-key': {
      type: 'string',
      arg: 'KEY',
      env: 'KILN_API_KEY',
      description: 'API key for --url.',
      default: null as string | null,
      defaultText: 'none',
      parse: nonEmpty,
    },
    json: {
      type: 'string',
      arg: 'FILE',
      description: 'Write all results as JSON.',
      default: null as string | null,
      defaultText: 'none',
      parse: nonEmpty,
    },
    report: {
      type: 'string',
      arg: 'FILE.html',
      description: 'Write a self-contained HTML report (charts, histograms, settings).',
      default: null as string | null,
      defaultText: 'none',
      parse: nonEmpty,
    },
    'price-per-hour': {
      type: 'string',
      arg: 'USD',
      description: 'Instance price, to print the cost per million inferences at the best throughput.',
      default: null as number | null,
      defaultText: 'none',
      parse: positiveNumber,
    } satisfies FlagSpec<number | null>,
    compare: {
      type: 'string',
      arg: 'seed',
      description: "Also run the seed's recipe (padded to max length, batch 1, one replica) and print the speedup.",
      default: null as 'seed' | null,
      defaultText: 'none',
      parse: choice<'seed'>(['seed']),
    } satisfies FlagSpec<'seed' | null>,
    ...runtimeFlags,
    ...hubFlags,
  },
  examples: [
    {
      command: 'kiln bench models/sst2-distilbert-tiny --price-per-hour 0.17 --compare seed',
      note: "all modes on the embedded model, with cost and the speedup over the seed's recipe",
    },
    {
      command:
        'kiln bench sentiment.kiln --mode concurrency --concurrency 1,8,32 --url http://127.0.0.1:8080 --report bench.html',
      note: 'load a running server over HTTP and write an HTML report',
    },
  ],
  async run({ positionals, flags }) {
    const artifactArg = positionals.ARTIFACT![0]!;
    const artifact = await artifactFromArgument(artifactArg, { quiet: false, hub: hubOptions(flags) });
    // Image models: --data is a folder of images or a file of image paths.
    const images = (await readArtifact(artifact, { verify: false })).manifest.task === 'image-classification';
    const paths = images ? await imagePaths(flags.data) : [];
    const texts: ModelInput[] = images
      ? await Promise.all(paths.map((p, i) => readImageFile(p, `image ${i + 1} of ${flags.data}`)))
      : (await readDataset(flags.data)).examples.map((e) => e.text);
    const classifier = await loadModel(artifact, classifierOptions(flags));
    const progress = new Progress();
    const tick = (label: string, done: number, total: number): void => progress.tick(done, total, label);
    try {
      const m = classifier.manifest;
      const meanTokens = texts.reduce((n, t) => n + classifier.inputSize(t), 0) / texts.length;
      const url = flags.url ? flags.url.replace(/\/$/, '') : null;
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        ...(flags['api-key'] ? { authorization: `Bearer ${flags['api-key']}` } : {}),
      };
      // Over HTTP each task has its route: /predict for classifiers, /embed for embedders.
      const route =
        classifier.task === 'feature-extraction'
          ? { path: '/embed', body: (text: unknown) => ({ inputs: text }) }
          : classifier.task === 'image-classification'
            ? {
                path: '/predict',
                body: (image: unknown) => ({ image: Buffer.from(image as Uint8Array).toString('base64') }),
              }
            : { path: '/predict', body: (text: unknown) => ({ text }) };
      const noun = images ? 'images' : 'texts';
      const predict: Predict = url
        ? async (text) => {
            const res = await fetch(`${url}${route.path}`, {
              method: 'POST',
              headers,
              body: JSON.stringify(route.body(text)),
            });
            if (!res.ok) throw new Error(`POST ${url}${route.path} answered ${res.status}: ${await res.text()}`);
            return res.json();
          }
        : (text) => classifier.infer([text]);
      // What one inference makes: a label for a text, a vector, or a label for an image.
      const unit = UNITS[classifier.task];
      const layout = { ...classifier.layout, buckets: [...classifier.layout.buckets] };
      const out = process.stdout;
      out.write(
        `kiln bench ${artifactArg}: ${m.name}${m.synthetic ? ' (SYNTHETIC weights)' : ''}; ${texts.length} ${noun} from ${flags.data === DEFAULT_DATA ? 'data/sst2/dev.tsv' : flags.data}${images ? ` (${m.image!.height} × ${m.image!.width})` : ` (mean ${meanTokens.toFixed(1)} tokens)`}\n` +
          `  ${layout.replicas} replica(s) × ${layout.threadsPerReplica} thread(s), max batch ${layout.maxBatch}, max delay ${layout.maxDelayMs} ms, buckets ${layout.buckets.join(',')}${url ? `; requests to ${url}` : ''}\n`,
      );

      for (let i = 0; i < flags.warmup; i += 1) await predict(texts[i % texts.length]!);
      const result: BenchResult = {
        artifact,
        model: m.name,
        synthetic: Boolean(m.synthetic),
        date: new Date().toISOString(),
        target: url,
        data: { path: flags.data, texts: texts.length, meanTokens },
        layout,
        machine: { cpu: cpus()[0]?.model.trim() ?? 'unknown', cores: availableParallelism() },
        versions: { kiln: KILN_VERSION, onnxruntime: RUNTIME_VERSION },
      };
      const modes = flags.mode === 'all' ? (['latency', 'throughput', 'concurrency'] as const) : [flags.mode];
      const candidates: Array<{ textsPerSecond: number; mode: string }> = [];

      if (modes.includes('latency')) {
        const requests = Array.from({ length: flags.requests }, (_, i) => texts[i % texts.length]!);
        const l = await latencyRun(predict, requests, tick);
        result.latency = l;
        out.write(
          `latency, one request at a time (${l.count} requests): avg ${formatMs(l.avgMs)}  p50 ${formatMs(l.p50Ms)}  p90 ${formatMs(l.p90Ms)}  p99 ${formatMs(l.p99Ms)}  max ${formatMs(l.maxMs)}\n`,
        );
        candidates.push({ textsPerSecond: 1000 / l.avgMs, mode: 'latency loop' });
      }
      if (modes.includes('throughput')) {
        const batches = flags.batches.filter((b) => b <= m.limits.maxBatch);
        const points = await throughputSweep(classifier, texts, batches, tick);
        result.throughput = points;
        classifier.reconfigure({ maxBatch: layout.maxBatch, maxDelayMs: layout.maxDelayMs });
        out.write(
          `throughput, offline (all ${noun} at once${images ? '' : ', sorted by length'}):\n  batch  ${unit.padStart(7)}   fill\n`,
        );
        for (const p of points)
          out.write(
            `  ${String(p.batch).padStart(5)}  ${p.textsPerSecond.toFixed(1).padStart(7)}  ${(p.fill * 100).toFixed(0).padStart(4)} %\n`,
          );
        for (const p of points)
          candidates.push({ textsPerSecond: p.textsPerSecond, mode: `offline, batch ${p.batch}` });
      }
      if (modes.includes('concurrency')) {
        const points = await concurrencySweep(
          predict,
          texts,
          flags.concurrency,
          { durationS: flags['duration-s'], batchStats: url ? undefined : () => classifier.stats() },
          tick,
        );
        result.concurrency = points;
        out.write(
          `concurrency, closed loop (${flags['duration-s']} s per level${url ? ', over HTTP' : ''}):\n  clients    req/s   p50 ms   p90 ms   p99 ms  avg batch\n`,
        );
        for (const p of points) {
          out.write(
            `  ${String(p.clients).padStart(7)}  ${p.requestsPerSecond.toFixed(1).padStart(7)}  ${p.latency.p50Ms.toFixed(2).padStart(7)}  ${p.latency.p90Ms.toFixed(2).padStart(7)}  ${p.latency.p99Ms.toFixed(2).padStart(7)}  ${url ? '      –' : p.avgBatch.toFixed(1).padStart(9)}\n`,
          );
        }
        for (const p of points)
          candidates.push({ textsPerSecond: p.requestsPerSecond, mode: `${p.clients} concurrent clients` });
      }
      result.best = candidates.sort((a, b) => b.textsPerSecond - a.textsPerSecond)[0];
      if (result.best) out.write(`best: ${result.best.textsPerSecond.toFixed(1)} ${unit} (${result.best.mode})\n`);
      if (flags['price-per-hour'] !== null && result.best) {
        result.cost = {
          pricePerHour: flags['price-per-hour'],
          perMillion: costPerMillion(flags['price-per-hour'], result.best.textsPerSecond),
        };
        out.write(
          `cost: $${result.cost.perMillion.toFixed(4)} per million inferences at $${flags['price-per-hour']}/h\n`,
        );
      }
      if (flags.compare === 'seed' && result.best) {
        // The seed's recipe: pad every text to max length, one text per call, one model copy.
        const seed = await loadModel(artifact, {
          replicas: 1,
          threadsPerReplica: availableParallelism(),
          maxBatch: 1,
          buckets: [m.limits.maxLength],
        });
        try {
          const sample = texts.slice(0, Math.min(texts.length, 300));
          for (let i = 0; i < Math.min(flags.warmup, 10); i += 1) await seed.infer([sample[0]!]);
          const seedRate = await seedRecipeThroughput(seed, sample);
          result.compare = { seedTextsPerSecond: seedRate, speedup: result.best.textsPerSecond / seedRate };
          out.write(
            `seed recipe (padded to ${m.limits.maxLength}, batch 1, one replica): ${seedRate.toFixed(1)} ${unit}; kiln is ${result.compare.speedup.toFixed(1)}× faster\n`,
          );
        } finally {
          await seed.close();
        }
      }
      if (flags.json) await writeFile(flags.json, `${JSON.stringify(result, null, 2)}\n`);
      if (flags.report) {
        await writeFile(flags.report, renderReport(result));
        process.stderr.write(`kiln bench: wrote ${flags.report}\n`);
      }
    } finally {
      await classifier.close();
    }
  },
});

const UNITS: Record<LoadedModel['task'], string> = {
  'text-classification': 'texts/s',
  'feature-extraction': 'embeddings/s',
  'image-classification': 'images/s',
};
