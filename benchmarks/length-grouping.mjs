// Length grouping (scheduler's lengthGrouping) on against off, interleaved round by round on the
// same artifact and sentences: latency of lone requests, offline throughput (sorted, batch 16),
// and a closed loop of 32 clients (req/s, p99, mean batch size, fill).
//   node benchmarks/length-grouping.mjs --artifact DIR [--rounds N] [--requests N] [--sentences N] [--seconds N]
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { DIST, ROOT } from './lib.mjs';

const { TextClassifier } = await import(`${DIST}/tasks/text-classification/model.js`);
const { summarize } = await import(`${DIST}/bench/measure.js`);

const { values: flags } = parseArgs({
  options: {
    artifact: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    requests: { type: 'string', default: '20' },
    sentences: { type: 'string', default: '160' },
    seconds: { type: 'string', default: '3' },
  },
});
if (!flags.artifact) {
  console.error('--artifact DIR is required (a compiled text-classification artifact)');
  process.exit(1);
}
const note = (line) => process.stderr.write(`${line}\n`);
const cpu = (() => {
  try {
    return (
      execFileSync('lscpu', { encoding: 'utf8' })
        .match(/^Model name:\s*(.*)$/m)?.[1]
        ?.trim() ?? 'unknown'
    );
  } catch {
    return 'unknown (no lscpu)';
  }
})();
const [header, ...rows] = (await readFile(join(ROOT, 'data', 'sst2', 'dev.tsv'), 'utf8'))
  .split('\n')
  .filter((l) => l.trim() !== '');
const column = header.split('\t').indexOf('sentence');
const sentences = rows.map((row) => row.split('\t')[column].trim()).slice(0, Number(flags.sentences));

async function measure(grouping) {
  const model = await TextClassifier.load(flags.artifact, { verify: false, lengthGrouping: grouping });
  try {
    for (const s of sentences.slice(0, 10)) await model.classify([s]);
    const lone = [];
    for (const s of sentences.slice(0, Number(flags.requests))) {
      const t0 = performance.now();
      await model.classify([s]);
      lone.push((performance.now() - t0) * 1000);
    }
    model.reconfigure({ maxBatch: 16, maxDelayMs: 0 });
    const sorted = [...sentences].sort((a, b) => model.tokenCount(a) - model.tokenCount(b));
    const t0 = performance.now();
    await model.classify(sorted);
    const offline = sentences.length / ((performance.now() - t0) / 1000);
    model.reconfigure({ maxBatch: 32, maxDelayMs: 2 });
    const before = model.stats();
    let cursor = 0;
    const latencies = [];
    const until = performance.now() + 1000 * Number(flags.seconds);
    const c0 = performance.now();
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (performance.now() < until) {
          const s0 = performance.now();
          await model.classify([sentences[cursor++ % sentences.length]]);
          latencies.push(performance.now() - s0);
        }
      }),
    );
    const rate = latencies.length / ((performance.now() - c0) / 1000);
    const after = model.stats();
    latencies.sort((a, b) => a - b);
    const batches = after.batches - before.batches;
    return {
      loneMs: summarize(lone).avgMs,
      offline,
      rate,
      p99: latencies[Math.min(latencies.length - 1, Math.floor(0.99 * latencies.length))],
      batch: (after.completed - before.completed) / batches,
      fill: (after.realTokens - before.realTokens) / (after.paddedTokens - before.paddedTokens),
    };
  } finally {
    await model.close();
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = { off: [], on: [] };
for (let round = 0; round < Number(flags.rounds); round += 1) {
  for (const grouping of round % 2 === 0 ? [false, true] : [true, false]) {
    const r = await measure(grouping);
    results[grouping ? 'on' : 'off'].push(r);
    note(
      `round ${round + 1} ${grouping ? 'on ' : 'off'}: closed ${r.rate.toFixed(1)} req/s p99 ${r.p99.toFixed(1)} ms ` +
        `batch ${r.batch.toFixed(1)} fill ${(100 * r.fill).toFixed(0)} %; offline ${r.offline.toFixed(1)}/s; lone ${r.loneMs.toFixed(2)} ms`,
    );
  }
}
const ratios = results.on.map((r, i) => r.rate / results.off[i].rate);
console.log(`CPU: ${cpu}, ${availableParallelism()} cores; load average at the end ${loadavg()[0].toFixed(1)}`);
console.log(`${flags.rounds} interleaved rounds, ${sentences.length} SST-2 dev sentences; medians over rounds`);
console.log('| grouping | closed loop 32 req/s | p99 (ms) | batch | fill | offline texts/s | lone avg (ms) |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const key of ['off', 'on']) {
  const r = results[key];
  const m = (f) => median(r.map(f));
  console.log(
    `| ${key} | ${m((x) => x.rate).toFixed(1)} | ${m((x) => x.p99).toFixed(1)} | ${m((x) => x.batch).toFixed(1)} | ` +
      `${(100 * m((x) => x.fill)).toFixed(0)} % | ${m((x) => x.offline).toFixed(1)} | ${m((x) => x.loneMs).toFixed(2)} |`,
  );
}
console.log(
  `closed-loop ratio on/off per round: ${ratios.map((x) => x.toFixed(3)).join(' ')}; median ${median(ratios).toFixed(3)}`,
);
