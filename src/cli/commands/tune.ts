import { availableParallelism, cpus } from 'node:os';
import { loadModel, resolveArtifact } from '../../api/open.js';
import { type Trial, tune } from '../../bench/tune.js';
import { KilnError } from '../../core/errors.js';
import { readArtifact, writeManifest } from '../../model/artifact.js';
import { readDataset } from '../../model/dataset.js';
import { compileNotice } from '../compile-notice.js';
import { deviceFlag, noticeAutoDevice } from '../device-flag.js';
import { hubFlags, hubOptions } from '../hub-flags.js';
import { decimal, defineCommand, integer, nonEmpty } from '../table.js';
import { DEFAULT_DATA } from './bench.js';

function row(t: Trial): string {
  return `  ${String(t.replicas).padStart(8)}  ${String(t.threadsPerReplica).padStart(7)}  ${String(t.maxBatch).padStart(9)}  ${String(t.maxDelayMs).padStart(8)}  ${String(t.clients).padStart(7)}  ${t.requestsPerSecond.toFixed(1).padStart(8)}  ${t.p50Ms.toFixed(1).padStart(7)}  ${t.p99Ms.toFixed(1).padStart(7)}  ${t.meetsSlo ? 'yes' : 'no'}`;
}

export const tuneCommand = defineCommand({
  name: 'tune',
  summary: 'Find the fastest replicas × threads × batch × delay layout that meets a p99 target, and store it.',
  description:
    'Tries layouts on this machine with closed-loop load from the data: each way to split the cores into replicas × ' +
    'threads per replica, growing max batch while throughput grows and p99 meets --p99-ms, then max delay on the best. ' +
    'Prints every trial, picks the highest throughput whose p99 meets the target, and stores that layout in the ' +
    "artifact's manifest: kiln serve and kiln bench then use it unless their flags say otherwise.",
  positionals: [
    {
      name: 'ARTIFACT',
      description: 'A compiled artifact folder (its manifest is updated), or a SOURCE (its cache entry is).',
      required: true,
    },
  ],
  flags: {
    'p99-ms': {
      type: 'string',
      arg: 'MS',
      description: 'Latency target: the 99th percentile a layout must meet, in milliseconds.',
      default: 100,
      parse: decimal(0.001, 600_000),
    },
    data: {
      type: 'string',
      arg: 'FILE',
      description: 'Texts to send (TSV/CSV with a sentence or text column, JSONL, or one per line).',
      default: DEFAULT_DATA,
      defaultText: 'the bundled SST-2 dev sentences',
      parse: nonEmpty,
    },
    'budget-s': {
      type: 'string',
      arg: 'S',
      description: 'Time to spend measuring, in seconds (spread over the trials).',
      default: 60,
      parse: integer(5, 86_400),
    },
    ...deviceFlag,
    ...hubFlags,
  },
  examples: [
    {
      command: 'kiln tune sentiment.kiln --p99-ms 50',
      note: 'the best layout with p99 ≤ 50 ms, stored in sentiment.kiln',
    },
    {
      command: 'kiln tune models/sst2-distilbert-tiny --budget-s 20 && kiln serve models/sst2-distilbert-tiny',
      note: 'a quick tune, then serve with the tuned layout',
    },
  ],
  async run({ positionals, flags }) {
    const artifact = await resolveArtifact(positionals.ARTIFACT![0]!, {
      onCompile: compileNotice,
      hub: hubOptions(flags),
      device: flags.device,
    });
    const { dir, manifest } = await readArtifact(artifact);
    // The device is settled once (auto probes), so every trial runs where the stored layout will.
    const probe = await loadModel({
      model: dir,
      device: flags.device,
      replicas: 1,
      threadsPerReplica: 1,
      verify: false,
    });
    const device = probe.layout.device;
    await probe.close();
    noticeAutoDevice(flags.device, device, 'tune');
    const texts = (await readDataset(flags.data)).examples.map((e) => e.text);
    process.stdout.write(
      `kiln tune ${manifest.name} on ${device}: p99 target ${flags['p99-ms']} ms, budget ${flags['budget-s']} s, ${availableParallelism()} cores\n` +
        `  replicas  threads  max batch  delay ms  clients     req/s   p50 ms   p99 ms  meets target\n`,
    );
    const { best, trials } = await tune({
      texts,
      sloP99Ms: flags['p99-ms'],
      budgetS: flags['budget-s'],
      maxBatchLimit: manifest.limits.maxBatch,
      gpu: device !== 'cpu',
      load: (replicas, threadsPerReplica) =>
        loadModel({ model: dir, device, replicas, threadsPerReplica, verify: false }),
      onTrial: (t) => process.stdout.write(`${row(t)}\n`),
    });
    if (!best) {
      const fastest = trials.reduce((a, b) => (a.p99Ms < b.p99Ms ? a : b));
      throw new KilnError('KILN_ERR_TUNE_NO_LAYOUT', {
        target: flags['p99-ms'],
        best: fastest.p99Ms.toFixed(1),
        trials: trials.length,
      });
    }
    manifest.tuned = {
      device,
      replicas: best.replicas,
      threadsPerReplica: best.threadsPerReplica,
      maxBatch: best.maxBatch,
      maxDelayMs: best.maxDelayMs,
      requestsPerSecond: best.requestsPerSecond,
      p99Ms: best.p99Ms,
      clients: best.clients,
      sloP99Ms: flags['p99-ms'],
      cpu: cpus()[0]?.model.trim() ?? 'unknown',
      cores: availableParallelism(),
      tunedAt: new Date().toISOString(),
    };
    await writeManifest(dir, manifest);
    process.stdout.write(
      `chosen: ${best.replicas} replica(s) × ${best.threadsPerReplica} thread(s), max batch ${best.maxBatch}, max delay ${best.maxDelayMs} ms: ` +
        `${best.requestsPerSecond.toFixed(1)} req/s at p99 ${best.p99Ms.toFixed(1)} ms (${best.clients} clients); stored in ${dir}/manifest.json\n`,
    );
  },
});
