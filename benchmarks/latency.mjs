// The default layout against every fixed one, in one run: latency (one request at a time) and
// offline throughput, on the same artifact, sentences and machine. Layouts are interleaved round
// by round (the machine's speed drifts, and other work on it moves every figure), and each
// ratio is taken within a round; the table gives the median over rounds. It also measures how
// much of the main thread tokenizing takes at full load (event-loop utilization during the
// offline run and a closed loop of 32 clients, and tokenizing alone), and times transformers.js
// q8 on the same ONNX file (batch 1 and offline) when benchmarks/node_modules has it, and ONNX
// Runtime alone on that file: the ceiling any wrapper of this runtime could reach, against which
// the transformers.js ratios are read. The default layout with the scheduler's length grouping
// off is measured too: the closed loop's req/s, p99 and fill on ÷ off.
//   npm run bench:latency -- [--artifact DIR] [--rounds N] [--requests N] [--sentences N] [--json FILE]
// Without --artifact it synthesizes DistilBERT-base (kiln synth) and compiles it int8 first.
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { DIST, ROOT, scratch } from './lib.mjs';

const { TextClassifier } = await import(`${DIST}/tasks/text-classification/model.js`);
const { summarize } = await import(`${DIST}/bench/measure.js`);

const { values: flags } = parseArgs({
  options: {
    artifact: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    requests: { type: 'string', default: '200' },
    sentences: { type: 'string', default: '872' },
    batch: { type: 'string', default: '16' },
    only: { type: 'string' },
    json: { type: 'string' },
  },
});
for (const name of ['rounds', 'requests', 'sentences', 'batch']) {
  if (!/^[1-9][0-9]*$/.test(flags[name])) {
    console.error(`--${name} must be a positive integer, got "${flags[name]}"`);
    process.exit(1);
  }
}
const rounds = Number(flags.rounds);
const cores = availableParallelism();
const note = (line) => process.stderr.write(`${line}\n`);

function cpuInfo() {
  try {
    const lscpu = execFileSync('lscpu', { encoding: 'utf8' });
    const field = (name) => lscpu.match(new RegExp(`^${name}:\\s*(.*)$`, 'm'))?.[1]?.trim() ?? 'unknown';
    const flagList = field('Flags').split(/\s+/);
    const simd = flagList.filter((f) => /^(avx|fma|f16c|amx|sse4)/.test(f) || f === 'avx512_vnni' || f === 'avx_vnni');
    return { model: field('Model name'), simd: simd.join(' '), flags: field('Flags') };
  } catch {
    return { model: 'unknown (no lscpu)', simd: '', flags: '' };
  }
}

async function readSentences(limit) {
  const [header, ...rows] = (await readFile(join(ROOT, 'data', 'sst2', 'dev.tsv'), 'utf8'))
    .split('\n')
    .filter((l) => l.trim() !== '');
  const column = header.split('\t').indexOf('sentence');
  return rows.map((row) => row.split('\t')[column].trim()).slice(0, limit);
}

async function artifactDir() {
  if (flags.artifact) return flags.artifact;
  const { dir } = await scratch('kiln-latency-');
  const { synthesize } = await import(`${DIST}/import/synth.js`);
  const { compile } = await import(`${DIST}/compiler/compile.js`);
  note('synthesizing distilbert-base-uncased and compiling it int8 (a few minutes)…');
  const source = join(dir, 'distilbert-synthetic');
  await synthesize({ preset: 'distilbert-base-uncased', out: source });
  process.env.KILN_CACHE_DIR ??= join(dir, 'cache');
  return (await compile({ source, out: join(dir, 'distilbert-int8.kiln'), precision: 'int8' })).artifactDir;
}

/** The layouts compared: the default (no flags) and each fixed replicas × threads. */
function layouts() {
  const fixed = [
    { name: `${cores} replicas × 1 thread (fixed)`, options: { replicas: cores, threadsPerReplica: 1 } },
    { name: `1 replica × ${cores} threads (fixed)`, options: { replicas: 1, threadsPerReplica: cores } },
    { name: `${cores} replicas × ${cores} threads (fixed)`, options: { replicas: cores, threadsPerReplica: cores } },
  ];
  // The default with the scheduler's length grouping off: what grouping similar lengths under load buys.
  const ungrouped = { name: 'default, length grouping off', options: { lengthGrouping: false } };
  const all = [
    { name: 'default (adaptive)', options: {}, isDefault: true },
    ...fixed.map((l) => ({ ...l, fixed: true })),
  ];
  all.push(ungrouped);
  return flags.only ? all.filter((l) => l.name.startsWith(flags.only) || l.isDefault) : all;
}

/** Latency (one at a time), offline throughput at max batch `batch`, and main-thread figures. */
async function measure(dir, layout, sentences) {
  const model = await TextClassifier.load(dir, { ...layout.options, verify: false });
  try {
    for (const s of sentences.slice(0, 20)) await model.classify([s]);
    const samples = [];
    for (const s of sentences.slice(0, Number(flags.requests))) {
      const t0 = performance.now();
      await model.classify([s]);
      samples.push((performance.now() - t0) * 1000);
    }
    const latency = summarize(samples);
    model.reconfigure({ maxBatch: Number(flags.batch), maxDelayMs: 0 });
    const elu0 = performance.eventLoopUtilization();
    const t0 = performance.now();
    await model.classify(sortedSentences);
    const seconds = (performance.now() - t0) / 1000;
    const offlineElu = performance.eventLoopUtilization(elu0).utilization;
    // A closed loop of 32 clients, one text each: a server's full load, tokenized one by one.
    const elu1 = performance.eventLoopUtilization();
    const before = model.stats();
    let cursor = 0;
    const waits = [];
    const until = performance.now() + 3000;
    const c0 = performance.now();
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (performance.now() < until) {
          const s0 = performance.now();
          await model.classify([sentences[cursor++ % sentences.length]]);
          waits.push((performance.now() - s0) * 1000);
        }
      }),
    );
    const closedRate = waits.length / ((performance.now() - c0) / 1000);
    const closedElu = performance.eventLoopUtilization(elu1).utilization;
    const after = model.stats();
    return {
      layout: {
        replicas: model.layout.replicas,
        threads: model.layout.threadsPerReplica,
        wide: model.layout.wideThreads,
      },
      latency: { avgMs: latency.avgMs, p50Ms: latency.p50Ms, p99Ms: latency.p99Ms },
      textsPerSecond: sentences.length / seconds,
      closedLoop32: {
        requestsPerSecond: closedRate,
        p99Ms: summarize(waits).p99Ms,
        fill: (after.realTokens - before.realTokens) / (after.paddedTokens - before.paddedTokens),
        eventLoopUtilization: closedElu,
      },
      offlineEventLoopUtilization: offlineElu,
    };
  } finally {
    await model.close();
  }
}

const { createSession } = await import(`${DIST}/runtime/binding.js`);

/** A batch of `rows` sequences of `length` tokens for the artifact's graph (ids, an all-ones mask, zero type ids). */
function feedsOf(length, rows = 1) {
  const filled = (value) => ({
    type: 'int64',
    data: new BigInt64Array(rows * length).fill(value),
    dims: [rows, length],
  });
  return {
    input_ids: filled(1012n),
    attention_mask: filled(1n),
    ...(withTypeIds ? { token_type_ids: filled(0n) } : {}),
  };
}
let withTypeIds = false;

/**
 * ONNX Runtime alone on the same file, no kiln around it: what any wrapper of this runtime could
 * reach here. Batch 1: one session on every core (ONNX Runtime's default spinning, as
 * transformers.js runs it), each sentence at its own length, no padding. Offline: one one-thread
 * session at batch `batch` over the length-sorted sentences, padded to each batch's longest, its
 * rate times the cores (perfect scaling, which no layout beats).
 */
async function ortAlone(dir, lengths) {
  const model = join(dir, 'model.onnx');
  const wide = await createSession(model, { backend: 'cpu', optimization: 'disabled', intraOpThreads: cores });
  let batch1Ms;
  try {
    const sample = lengths.slice(0, Number(flags.requests));
    for (const n of new Set(lengths)) await wide.run(feedsOf(n));
    const t0 = performance.now();
    for (const n of sample) await wide.run(feedsOf(n));
    batch1Ms = (performance.now() - t0) / sample.length;
  } finally {
    await wide.release();
  }
  const one = await createSession(model, { backend: 'cpu', optimization: 'disabled', intraOpThreads: 1 });
  try {
    const sorted = [...lengths].sort((a, b) => a - b);
    const size = Number(flags.batch);
    const batches = [];
    for (let i = 0; i < sorted.length; i += size) batches.push(sorted.slice(i, i + size));
    await one.run(feedsOf(sorted.at(-1), size));
    const t0 = performance.now();
    for (const b of batches) await one.run(feedsOf(b.at(-1), b.length));
    return { batch1Ms, textsPerSecond: (cores * sorted.length) / ((performance.now() - t0) / 1000) };
  } finally {
    await one.release();
  }
}

/**
 * Each sentence's token count, and tokenizing alone on the main thread: µs per sentence (what it
 * takes from the event loop).
 */
async function tokenizing(dir, sentences) {
  const model = await TextClassifier.load(dir, { replicas: 1, threadsPerReplica: 1, verify: false });
  try {
    const lengths = sentences.map((s) => model.tokenCount(s));
    const t0 = performance.now();
    for (let i = 0; i < 3; i += 1) for (const s of sentences) model.tokenCount(s);
    return { lengths, usPerSentence: ((performance.now() - t0) * 1000) / (3 * sentences.length) };
  } finally {
    await model.close();
  }
}

/**
 * How the wide session's idle threads wait (binding.ts `spinning`): `always` (ONNX Runtime's
 * default: spinning between operators and a while after each run), `during-run` (spinning between
 * operators, asleep once the run returns) or `never`. Batch-1 latency of one session on every
 * core, each mode in turn, and what its idle pool costs two one-thread sessions running beside it
 * (the wide replica idles while the replicas carry load). The default layout uses `during-run`.
 */
async function spinning(dir, lengths) {
  const encoded = lengths.slice(0, 50);
  const model = join(dir, 'model.onnx');
  const modes = ['always', 'during-run', 'never'];
  const result = Object.fromEntries(modes.map((m) => [m, []]));
  for (const spin of [...modes, ...[...modes].reverse()]) {
    const session = await createSession(model, {
      backend: 'cpu',
      optimization: 'disabled',
      intraOpThreads: cores,
      spinning: spin,
    });
    for (const n of encoded.slice(0, 5)) await session.run(feedsOf(n));
    const t0 = performance.now();
    for (const n of encoded) await session.run(feedsOf(n));
    const ms = (performance.now() - t0) / encoded.length;
    // Two one-thread sessions at batch 16 while this one has just answered and idles.
    const narrow = await Promise.all(
      [0, 1].map(() => createSession(model, { backend: 'cpu', optimization: 'disabled', intraOpThreads: 1 })),
    );
    await session.run(feedsOf(32));
    const t1 = performance.now();
    await Promise.all(
      narrow.map(async (n) => {
        for (let i = 0; i < 5; i += 1) {
          await n.run(feedsOf(32, 16));
          // The wide session answers now and then, as a lone request would.
          if (i === 2) await session.run(feedsOf(16));
        }
      }),
    );
    const narrowMs = performance.now() - t1;
    await Promise.all([session, ...narrow].map((x) => x.release()));
    result[spin].push({ batch1Ms: ms, narrowBesideMs: narrowMs });
  }
  return result;
}

/** transformers.js q8 (its dynamic int8) on the same ONNX file, batch 1 and offline, when installed here. */
async function transformersJs(dir, sentences, sorted) {
  let transformers;
  try {
    transformers = await import('@huggingface/transformers');
  } catch {
    return null;
  }
  const { copyFile, mkdir, symlink } = await import('node:fs/promises');
  const { dir: models } = await scratch('kiln-latency-tjs-');
  const folder = join(models, 'local', 'model');
  await mkdir(join(folder, 'onnx'), { recursive: true });
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json'])
    await copyFile(join(dir, f), join(folder, f)).catch(() => undefined);
  await symlink(join(dir, 'model.onnx'), join(folder, 'onnx', 'model_quantized.onnx'));
  transformers.env.localModelPath = models;
  transformers.env.allowRemoteModels = false;
  const pipe = await transformers.pipeline('text-classification', 'local/model', {
    dtype: 'q8',
    device: 'cpu',
    session_options: { intraOpNumThreads: cores },
  });
  for (const s of sentences.slice(0, 20)) await pipe(s);
  const samples = [];
  for (const s of sentences.slice(0, Number(flags.requests))) {
    const t0 = performance.now();
    await pipe(s);
    samples.push((performance.now() - t0) * 1000);
  }
  // Offline: calls of `batch` sentences in kiln's offline order (sorted by length), so its batches
  // pad as little as kiln's do.
  const size = Number(flags.batch);
  const t0 = performance.now();
  for (let i = 0; i < sorted.length; i += size) await pipe(sorted.slice(i, i + size));
  const textsPerSecond = sorted.length / ((performance.now() - t0) / 1000);
  await pipe.dispose?.();
  return { avgMs: summarize(samples).avgMs, textsPerSecond };
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const cpu = cpuInfo();
const dir = await artifactDir();
const sentences = await readSentences(Number(flags.sentences));
const { lengths, usPerSentence: tokenizeUs } = await tokenizing(dir, sentences);
const byLength = sentences.map((text, i) => ({ text, n: lengths[i] }));
const sortedSentences = byLength.sort((a, b) => a.n - b.n).map((x) => x.text);
{
  const probe = await createSession(join(dir, 'model.onnx'), {
    backend: 'cpu',
    optimization: 'disabled',
    intraOpThreads: 1,
  });
  withTypeIds = probe.inputNames.includes('token_type_ids');
  await probe.release();
}
const list = layouts();
const results = list.map(() => []);
const tjs = [];
const alone = [];
note(`CPU ${cpu.model}, ${cores} cores; SIMD flags: ${cpu.simd}; load average ${loadavg()[0].toFixed(1)}`);
for (let round = 0; round < rounds; round += 1) {
  // Rotate the order each round so no layout always runs first (or after the same one).
  const order = list.map((_, i) => (i + round) % list.length);
  for (const i of order) {
    note(`round ${round + 1}/${rounds}: ${list[i].name}`);
    results[i].push(await measure(dir, list[i], sentences));
  }
  note(`round ${round + 1}/${rounds}: ONNX Runtime alone`);
  alone.push(await ortAlone(dir, lengths));
  const t = await transformersJs(dir, sentences, sortedSentences);
  if (t) tjs.push(t);
}
note('wide session: idle threads spinning always, during a run, never');
const spin = await spinning(dir, lengths);

const def = results[0];
const fixedIndex = list.map((_, i) => i).filter((i) => list[i].fixed);
/** Per round: default ÷ the best fixed layout of that round. */
const latencyRatios = def.map(
  (d, r) => d.latency.avgMs / Math.min(...fixedIndex.map((i) => results[i][r].latency.avgMs)),
);
const throughputRatios = def.map(
  (d, r) => d.textsPerSecond / Math.max(...fixedIndex.map((i) => results[i][r].textsPerSecond)),
);

const lines = [];
const out = (line = '') => lines.push(line);
out(`CPU: ${cpu.model}, ${cores} cores (${cpu.simd}); load average at the end ${loadavg()[0].toFixed(1)}`);
out(`artifact: ${dir}; ${sentences.length} SST-2 dev sentences; ${rounds} interleaved rounds; medians over rounds`);
out();
out(
  `| layout | latency avg (ms) | p99 (ms) | offline texts/s (batch ${flags.batch}) | closed loop 32 req/s | its p99 (ms) | its fill |`,
);
out('| --- | --- | --- | --- | --- | --- | --- |');
list.forEach((l, i) => {
  const r = results[i];
  out(
    `| ${l.name} | ${median(r.map((x) => x.latency.avgMs)).toFixed(2)} | ${median(r.map((x) => x.latency.p99Ms)).toFixed(2)} | ${median(r.map((x) => x.textsPerSecond)).toFixed(1)} | ${median(r.map((x) => x.closedLoop32.requestsPerSecond)).toFixed(1)} | ${median(r.map((x) => x.closedLoop32.p99Ms)).toFixed(1)} | ${(100 * median(r.map((x) => x.closedLoop32.fill))).toFixed(0)} % |`,
  );
});
out(
  `| ONNX Runtime alone, same file (batch 1: ${cores} threads, own length; offline: one thread × ${cores}) | ${median(alone.map((x) => x.batch1Ms)).toFixed(2)} | | ${median(alone.map((x) => x.textsPerSecond)).toFixed(1)} | | | |`,
);
if (tjs.length > 0)
  out(
    `| transformers.js q8, same ONNX | ${median(tjs.map((x) => x.avgMs)).toFixed(2)} | | ${median(tjs.map((x) => x.textsPerSecond)).toFixed(1)} | | | |`,
  );
else out('transformers.js: not installed in benchmarks/ (npm install there to compare it)');
out();
out(
  `default latency ÷ best fixed, per round: ${latencyRatios.map((x) => x.toFixed(3)).join(', ')} (median ${median(latencyRatios).toFixed(3)}; must be ≤ 1.10)`,
);
out(
  `default throughput ÷ best fixed, per round: ${throughputRatios.map((x) => x.toFixed(3)).join(', ')} (median ${median(throughputRatios).toFixed(3)}; must be ≥ 0.95)`,
);
const ungrouped = list.findIndex((l) => l.options.lengthGrouping === false);
if (ungrouped >= 0) {
  const grouping = def.map(
    (d, r) => d.closedLoop32.requestsPerSecond / results[ungrouped][r].closedLoop32.requestsPerSecond,
  );
  out(
    `closed loop 32, length grouping on ÷ off, per round: ${grouping.map((x) => x.toFixed(3)).join(', ')} (median ${median(grouping).toFixed(3)})`,
  );
}
if (tjs.length > 0) {
  // Within each round: kiln's default against transformers.js, and ONNX Runtime alone against
  // transformers.js (the most any wrapper of this runtime could reach on this file and machine).
  const perRound = (f) => tjs.map((t, r) => f(t, def[r], alone[r]));
  const ratios = (xs) => `${xs.map((x) => x.toFixed(2)).join(', ')} (median ${median(xs).toFixed(2)})`;
  out(
    `transformers.js q8 latency ÷ default latency, per round: ${ratios(perRound((t, d) => t.avgMs / d.latency.avgMs))}; must be ≥ 1.3`,
  );
  out(
    `default offline throughput ÷ transformers.js q8, per round: ${ratios(perRound((t, d) => d.textsPerSecond / t.textsPerSecond))}; must be ≥ 1.6`,
  );
  out(
    `ceiling, ONNX Runtime alone ÷ transformers.js q8, per round: latency ${ratios(perRound((t, _, a) => t.avgMs / a.batch1Ms))}, offline throughput ${ratios(perRound((t, _, a) => a.textsPerSecond / t.textsPerSecond))}`,
  );
}
out(
  `default ÷ ONNX Runtime alone, per round: latency ${def.map((d, r) => (d.latency.avgMs / alone[r].batch1Ms).toFixed(2)).join(', ')}, offline throughput ${def.map((d, r) => (d.textsPerSecond / alone[r].textsPerSecond).toFixed(2)).join(', ')}`,
);
out();
out(
  `main thread, default layout: event-loop utilization ${(100 * median(def.map((x) => x.offlineEventLoopUtilization))).toFixed(1)} % during the offline run, ` +
    `${(100 * median(def.map((x) => x.closedLoop32.eventLoopUtilization))).toFixed(1)} % under 32 closed-loop clients; ` +
    `tokenizing alone ${tokenizeUs.toFixed(0)} µs per sentence (${((tokenizeUs / 1e6) * median(def.map((x) => x.textsPerSecond)) * 100).toFixed(1)} % of the main thread at the offline rate)`,
);
const spinLine = (key) =>
  `${median(spin[key].map((x) => x.batch1Ms)).toFixed(2)} ms at batch 1, two one-thread sessions beside it ${median(spin[key].map((x) => x.narrowBesideMs)).toFixed(0)} ms`;
out(
  `wide session (${cores} threads), idle threads spinning always: ${spinLine('always')}; during a run (the default): ${spinLine('during-run')}; never: ${spinLine('never')}`,
);
console.log(lines.join('\n'));
if (flags.json)
  await writeFile(
    flags.json,
    JSON.stringify({ cpu, cores, layouts: list.map((l) => l.name), results, alone, tjs, tokenizeUs, spin }, null, 2),
  );
