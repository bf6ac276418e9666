import { writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { cpuInfo, DIST, scratch, sst2Sentences, synthesizedInt8 } from './lib.mjs';

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

/** The layouts compared: the default (no flags) and each fixed replicas × threads. */
function layouts() {
  const fixed = [
    { name: `${cores} replicas × 1 thread (fixed)`, options: { replicas: cores, threadsPerReplica: 1 } },
    { name: `1 replica × ${cores} threads (fixed)`, options: { replicas: 1, threadsPerReplica: cores } },
    { name: `${cores} replicas × ${cores} threads (fixed)`, options: { replicas: cores, threadsPerReplica: cores } },
  ];
  // The default with the scheduler's length grouping off: what grouping similar lengths under load buys.
  const ungrouped = { name: 'default, length grouping off', options: { lengthGrouping: false } };
  // The default with its wide replica's threads asleep as soon as a run returns (the default spins a while after).
  const duringRun = { name: 'default, wide replica spinning during a run', options: { wideSpinning: 'during-run' } };
  const all = [
    { name: 'default (adaptive)', options: {}, isDefault: true },
    ...fixed.map((l) => ({ ...l, fixed: true })),
  ];
  all.push(ungrouped, duringRun);
  return flags.only ? all.filter((l) => l.name.startsWith(flags.only) || l.isDefault) : all;
}

/** One of the layouts, loaded: lone requests, the offline run and the closed loop go through kiln. */
async function kilnContender(dir, layout) {
  const model = await TextClassifier.load(dir, { ...layout.options, verify: false });
  const { maxBatch, maxDelayMs } = model.layout;
  return {
    ...layout,
    layout: {
      replicas: model.layout.replicas,
      threads: model.layout.threadsPerReplica,
      wide: model.layout.wideThreads,
    },
    one: (i) => model.classify([sentences[i]]),
    // Every sentence in one call, at max batch `batch`; then the layout's own batching again. The
    // texts come length-sorted, as the other contenders get them, or in data order: kiln then
    // sorts them itself (Scheduler.submitAll). Returns the batches' fill (real / padded tokens).
    async offline(texts = sortedSentences) {
      model.reconfigure({ maxBatch: Number(flags.batch), maxDelayMs: 0 });
      const before = model.stats();
      try {
        await model.classify(texts);
      } finally {
        model.reconfigure({ maxBatch, maxDelayMs });
      }
      const after = model.stats();
      return (after.realTokens - before.realTokens) / (after.paddedTokens - before.paddedTokens);
    },
    /** A closed loop of 32 clients, one text each, for `ms`: a server's full load, tokenized one by one. */
    async closedLoop(ms) {
      const before = model.stats();
      const elu = performance.eventLoopUtilization();
      let cursor = 0;
      const waits = [];
      const c0 = performance.now();
      const until = c0 + ms;
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (performance.now() < until) {
            const s0 = performance.now();
            await model.classify([sentences[cursor++ % sentences.length]]);
            waits.push((performance.now() - s0) * 1000);
          }
        }),
      );
      const after = model.stats();
      return {
        requestsPerSecond: waits.length / ((performance.now() - c0) / 1000),
        p99Ms: summarize(waits).p99Ms,
        fill: (after.realTokens - before.realTokens) / (after.paddedTokens - before.paddedTokens),
        eventLoopUtilization: performance.eventLoopUtilization(elu).utilization,
      };
    },
    close: () => model.close(),
  };
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
 * reach here. Lone requests: one session on every core (ONNX Runtime's default spinning, as
 * transformers.js runs it), each sentence at its own length, no padding. Offline: one one-thread
 * session over the length-sorted sentences in the batches kiln's default makes (rows and token
 * budget) but padded only to each batch's longest, its time divided by the cores (perfect
 * scaling, which no layout beats).
 */
async function ortAloneContender(dir) {
  const model = join(dir, 'model.onnx');
  const wide = await createSession(model, { backend: 'cpu', optimization: 'disabled', intraOpThreads: cores });
  const one = await createSession(model, { backend: 'cpu', optimization: 'disabled', intraOpThreads: 1 });
  for (const n of new Set(lengths)) await wide.run(feedsOf(n));
  // kiln's offline batches for the default layout, unpadded to buckets: at most `batch` rows and
  // the default token budget (maxBatchTokens), each padded to its longest.
  const { readArtifact } = await import(`${DIST}/model/artifact.js`);
  const { defaultMaxBatchTokens } = await import(`${DIST}/runtime/task-model.js`);
  const budget = defaultMaxBatchTokens((await readArtifact(dir)).manifest, 'cpu') ?? Infinity;
  const size = Number(flags.batch);
  const batches = [];
  for (const n of [...lengths].sort((a, b) => a - b)) {
    const last = batches.at(-1);
    if (last && last.length < size && n * (last.length + 1) <= budget) last.push(n);
    else batches.push([n]);
  }
  return {
    name: `ONNX Runtime alone, same file (lone: ${cores} threads, own length; offline: one thread ÷ ${cores})`,
    alone: true,
    one: (i) => wide.run(feedsOf(lengths[i])),
    async offline() {
      for (const b of batches) await one.run(feedsOf(b.at(-1), b.length));
    },
    offlineScale: cores,
    close: () => Promise.all([wide.release(), one.release()]),
  };
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
 * (the wide replica idles while the replicas carry load). The default layout uses `always`.
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

/** transformers.js q8 (its dynamic int8) on the same ONNX file, when benchmarks/node_modules has it. */
async function transformersJsContender(dir) {
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
  const size = Number(flags.batch);
  return {
    name: 'transformers.js q8, same ONNX',
    tjs: true,
    one: (i) => pipe(sentences[i]),
    // Calls of `batch` sentences in kiln's offline order, so its batches pad as little as kiln's.
    async offline() {
      for (let i = 0; i < sortedSentences.length; i += size) await pipe(sortedSentences.slice(i, i + size));
    },
    close: async () => pipe.dispose?.(),
  };
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const cpu = cpuInfo();
const dir = flags.artifact ?? (await synthesizedInt8('distilbert-base-uncased'));
const sentences = await sst2Sentences(Number(flags.sentences));
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
note(`CPU ${cpu.model}, ${cores} cores; SIMD flags: ${cpu.simd}; load average ${loadavg()[0].toFixed(1)}`);
// Every contender is loaded once and stays loaded (an idle one's threads sleep), so each phase can
// interleave them in short blocks: the machine's speed drifts within seconds here.
const contenders = [];
for (const layout of list) {
  note(`loading ${layout.name}`);
  contenders.push(await kilnContender(dir, layout));
}
contenders.push(await ortAloneContender(dir));
const tjsContender = await transformersJsContender(dir);
if (tjsContender) contenders.push(tjsContender);
const kilnOnes = contenders.filter((c) => c.layout);
/** Runs `fn` for each contender in `among`, round by round, the order rotating every round. */
async function interleaved(among, label, fn) {
  const perRound = among.map(() => []);
  for (let round = 0; round < rounds; round += 1) {
    note(`${label}, round ${round + 1}/${rounds}`);
    for (let k = 0; k < among.length; k += 1) {
      const i = (k + round) % among.length;
      perRound[i].push(await fn(among[i]));
    }
  }
  return perRound;
}
const sample = sentences.slice(0, Number(flags.requests)).map((_, i) => i);
for (const c of contenders) for (const i of sample.slice(0, 20)) await c.one(i);
const lone = await interleaved(contenders, 'one request at a time', async (c) => {
  const samples = [];
  for (const i of sample) {
    const t0 = performance.now();
    await c.one(i);
    samples.push((performance.now() - t0) * 1000);
  }
  return { avgMs: summarize(samples).avgMs, samples };
});
const defaultElu = { offline: [], closed: [] };
/** The default layout given the texts in data order, measured right after its sorted run: texts/s and fill of both. */
const dataOrder = [];
const offline = await interleaved(contenders, 'offline', async (c) => {
  const elu = performance.eventLoopUtilization();
  const t0 = performance.now();
  const fill = await c.offline();
  const seconds = (performance.now() - t0) / 1000 / (c.offlineScale ?? 1);
  if (c.isDefault) {
    defaultElu.offline.push(performance.eventLoopUtilization(elu).utilization);
    const t1 = performance.now();
    const unsortedFill = await c.offline(sentences);
    dataOrder.push({
      textsPerSecond: sentences.length / ((performance.now() - t1) / 1000),
      fill: unsortedFill,
      sortedFill: fill,
    });
  }
  return sentences.length / seconds;
});
const closed = await interleaved(kilnOnes, 'closed loop of 32 clients', async (c) => {
  const r = await c.closedLoop(3000);
  if (c.isDefault) defaultElu.closed.push(r.eventLoopUtilization);
  return r;
});
for (const c of contenders) await c.close();
note('wide session: idle threads spinning always, during a run, never');
const spin = await spinning(dir, lengths);

const indexOf = (pred) => contenders.findIndex(pred);
const def = indexOf((c) => c.isDefault);
const aloneAt = indexOf((c) => c.alone);
const tjsAt = indexOf((c) => c.tjs);
const fixedIndex = contenders.map((_, i) => i).filter((i) => contenders[i].fixed);
/** Per round: default ÷ the best fixed layout of that round. */
const latencyRatios = lone[def].map((d, r) => d.avgMs / Math.min(...fixedIndex.map((i) => lone[i][r].avgMs)));
const throughputRatios = offline[def].map((d, r) => d / Math.max(...fixedIndex.map((i) => offline[i][r])));
/** All of a contender's lone-request samples, pooled over rounds, for the p99. */
const pooledP99 = (i) => summarize(lone[i].flatMap((x) => x.samples)).p99Ms;

const lines = [];
const out = (line = '') => lines.push(line);
const ratios = (xs) => `${xs.map((x) => x.toFixed(2)).join(', ')} (median ${median(xs).toFixed(2)})`;
out(`CPU: ${cpu.model}, ${cores} cores (${cpu.simd}); load average at the end ${loadavg()[0].toFixed(1)}`);
out(
  `artifact: ${dir}; ${sentences.length} SST-2 dev sentences; ${rounds} rounds of each phase, contenders interleaved; medians over rounds`,
);
out();
out(
  `| layout | latency avg (ms) | p99 (ms) | offline texts/s (batch ${flags.batch}) | closed loop 32 req/s | its p99 (ms) | its fill |`,
);
out('| --- | --- | --- | --- | --- | --- | --- |');
contenders.forEach((c, i) => {
  const k = kilnOnes.indexOf(c);
  const loop = k >= 0 ? closed[k] : null;
  const cells = loop
    ? [
        median(loop.map((x) => x.requestsPerSecond)).toFixed(1),
        median(loop.map((x) => x.p99Ms)).toFixed(1),
        `${(100 * median(loop.map((x) => x.fill))).toFixed(0)} %`,
      ]
    : ['', '', ''];
  out(
    `| ${c.name} | ${median(lone[i].map((x) => x.avgMs)).toFixed(2)} | ${pooledP99(i).toFixed(2)} | ${median(offline[i]).toFixed(1)} | ${cells.join(' | ')} |`,
  );
});
if (tjsAt < 0) out('transformers.js: not installed in benchmarks/ (npm install there to compare it)');
out();
out(`default latency ÷ best fixed, per round: ${ratios(latencyRatios)}; must be ≤ 1.10`);
out(`default offline throughput ÷ best fixed, per round: ${ratios(throughputRatios)}; must be ≥ 0.95`);
const ungrouped = kilnOnes.findIndex((c) => c.options.lengthGrouping === false);
if (ungrouped >= 0) {
  const d = kilnOnes.findIndex((c) => c.isDefault);
  const grouping = closed[d].map((x, r) => x.requestsPerSecond / closed[ungrouped][r].requestsPerSecond);
  out(`closed loop 32, length grouping on ÷ off, per round: ${ratios(grouping)}`);
}
out(
  `default, offline with the texts in data order (kiln sorts a call's texts itself): ${median(dataOrder.map((x) => x.textsPerSecond)).toFixed(1)} texts/s, ÷ sorted per round ${ratios(dataOrder.map((x, r) => x.textsPerSecond / offline[def][r]))}; fill ${(100 * median(dataOrder.map((x) => x.fill))).toFixed(0)} % (sorted by the caller: ${(100 * median(dataOrder.map((x) => x.sortedFill))).toFixed(0)} %)`,
);
const spinAt = indexOf((c) => c.options?.wideSpinning === 'during-run');
if (spinAt >= 0) {
  const k = kilnOnes.indexOf(contenders[spinAt]);
  const d = kilnOnes.findIndex((c) => c.isDefault);
  out(
    `wide replica spinning during a run ÷ the default (spinning always), per round: latency ${ratios(lone[spinAt].map((x, r) => x.avgMs / lone[def][r].avgMs))}; offline ${ratios(offline[spinAt].map((x, r) => x / offline[def][r]))}; closed loop ${ratios(closed[k].map((x, r) => x.requestsPerSecond / closed[d][r].requestsPerSecond))}`,
  );
}
const perRound = (phase, f) => phase[def].map((_, r) => f(r));
if (tjsAt >= 0) {
  // Within each round: kiln's default against transformers.js, and ONNX Runtime alone against
  // transformers.js (the most any wrapper of this runtime could reach on this file and machine).
  out(
    `transformers.js q8 latency ÷ default latency, per round: ${ratios(perRound(lone, (r) => lone[tjsAt][r].avgMs / lone[def][r].avgMs))}; must be ≥ 1.3`,
  );
  out(
    `default offline throughput ÷ transformers.js q8, per round: ${ratios(perRound(offline, (r) => offline[def][r] / offline[tjsAt][r]))}; must be ≥ 1.6`,
  );
  out(
    `ceiling, ONNX Runtime alone ÷ transformers.js q8, per round: latency ${ratios(perRound(lone, (r) => lone[tjsAt][r].avgMs / lone[aloneAt][r].avgMs))}; offline throughput ${ratios(perRound(offline, (r) => offline[aloneAt][r] / offline[tjsAt][r]))}`,
  );
}
out(
  `default ÷ ONNX Runtime alone, per round: latency ${ratios(perRound(lone, (r) => lone[def][r].avgMs / lone[aloneAt][r].avgMs))}; offline throughput ${ratios(perRound(offline, (r) => offline[def][r] / offline[aloneAt][r]))}`,
);
out();
out(
  `main thread, default layout: event-loop utilization ${(100 * median(defaultElu.offline)).toFixed(1)} % during the offline run, ` +
    `${(100 * median(defaultElu.closed)).toFixed(1)} % under 32 closed-loop clients; ` +
    `tokenizing alone ${tokenizeUs.toFixed(0)} µs per sentence (${((tokenizeUs / 1e6) * median(offline[def]) * 100).toFixed(1)} % of the main thread at the offline rate)`,
);
const spinLine = (key) =>
  `${median(spin[key].map((x) => x.batch1Ms)).toFixed(2)} ms at batch 1, two one-thread sessions beside it ${median(spin[key].map((x) => x.narrowBesideMs)).toFixed(0)} ms`;
out(
  `wide session (${cores} threads), idle threads spinning always (the default): ${spinLine('always')}; during a run: ${spinLine('during-run')}; never: ${spinLine('never')}`,
);
console.log(lines.join('\n'));
if (flags.json) {
  const figures = contenders.map((c, i) => ({
    name: c.name,
    layout: c.layout ?? null,
    lone: lone[i].map((x) => x.avgMs),
    p99Ms: pooledP99(i),
    offline: offline[i],
    closedLoop: kilnOnes.includes(c) ? closed[kilnOnes.indexOf(c)] : null,
  }));
  await writeFile(flags.json, JSON.stringify({ cpu, cores, figures, dataOrder, tokenizeUs, spin }, null, 2));
}
