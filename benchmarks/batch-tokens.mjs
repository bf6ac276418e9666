// What max batch tokens (ModelOptions.maxBatchTokens) buys on the CPU: one bulk call of texts
// through the default layout with batches capped by rows only (max batch) and by the default
// token budget (its feed-forward activations within 6 MiB), half and twice that budget, and
// batches of 16 rows; on SST-2 dev sentences and on texts of four sentences each. Every variant
// is loaded once and they run in turn, round by round, the order rotating; ratios are taken
// within a round (this machine's speed drifts).
//   npm run bench:batch-tokens -- [--artifact DIR] [--rounds N] [--sentences N] [--long N] [--json FILE]
// Without --artifact it synthesizes DistilBERT-base (kiln synth) and compiles it int8 first.
import { writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { cpuInfo, DIST, sst2Sentences, synthesizedInt8 } from './lib.mjs';

const { TextClassifier } = await import(`${DIST}/tasks/text-classification/model.js`);
const { readArtifact } = await import(`${DIST}/model/artifact.js`);
const { defaultMaxBatchTokens } = await import(`${DIST}/runtime/task-model.js`);

const { values: flags } = parseArgs({
  options: {
    artifact: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    sentences: { type: 'string', default: '256' },
    long: { type: 'string', default: '96' },
    json: { type: 'string' },
  },
});
for (const name of ['rounds', 'sentences', 'long']) {
  if (!/^[1-9][0-9]*$/.test(flags[name])) {
    console.error(`--${name} must be a positive integer, got "${flags[name]}"`);
    process.exit(1);
  }
}
const rounds = Number(flags.rounds);
const note = (line) => process.stderr.write(`${line}\n`);

const cpu = cpuInfo();
const dir = flags.artifact ?? (await synthesizedInt8('distilbert-base-uncased'));
const budget = defaultMaxBatchTokens((await readArtifact(dir)).manifest, 'cpu');
if (budget === null) {
  console.error(`${dir} has no text encoder size in its manifest: there is no default token budget to measure`);
  process.exit(1);
}
const all = await sst2Sentences();
const sets = [
  { name: 'SST-2 sentences', texts: all.slice(0, Number(flags.sentences)) },
  {
    name: 'texts of 4 sentences',
    texts: Array.from({ length: Number(flags.long) }, (_, i) => all.slice(4 * i, 4 * i + 4).join(' ')),
  },
];
const variants = [
  { name: 'rows only (max batch)', options: { maxBatchTokens: null } },
  { name: `default: ${budget} tokens`, options: {}, isDefault: true },
  { name: `${Math.round(budget / 2)} tokens`, options: { maxBatchTokens: Math.round(budget / 2) } },
  { name: `${budget * 2} tokens`, options: { maxBatchTokens: budget * 2 } },
  { name: '16 rows, no token cap', options: { maxBatchTokens: null, maxBatch: 16 } },
];

note(`CPU ${cpu.model}; ${cpu.simd}; load average ${loadavg()[0].toFixed(1)}`);
const models = [];
for (const v of variants) models.push(await TextClassifier.load(dir, { ...v.options, verify: false }));
const meanTokens = sets.map((s) => s.texts.reduce((n, t) => n + models[0].tokenCount(t), 0) / s.texts.length);
const results = sets.map(() => variants.map(() => []));
try {
  for (const m of models) for (const set of sets) await m.classify(set.texts.slice(0, 32));
  for (let round = 0; round < rounds; round += 1) {
    note(`round ${round + 1}/${rounds}`);
    for (const [s, set] of sets.entries())
      for (let k = 0; k < variants.length; k += 1) {
        const i = (k + round) % variants.length;
        const t0 = performance.now();
        await models[i].classify(set.texts);
        results[s][i].push(set.texts.length / ((performance.now() - t0) / 1000));
      }
  }
} finally {
  for (const m of models) await m.close();
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const def = variants.findIndex((v) => v.isDefault);
const lines = [
  `CPU: ${cpu.model}, ${availableParallelism()} cores (${cpu.simd}); load average at the end ${loadavg()[0].toFixed(1)}`,
  `artifact: ${dir}; default layout (${models[0].layout.replicas} replicas × ${models[0].layout.threadsPerReplica} thread, max batch ${models[0].layout.maxBatch}); one call of all texts per run; ${rounds} rounds, medians`,
  '',
  `| batches capped by | ${sets.map((s, i) => `${s.name} (${s.texts.length}, mean ${meanTokens[i].toFixed(0)} tokens), texts/s`).join(' | ')} |`,
  `| --- | ${sets.map(() => '---').join(' | ')} |`,
  ...variants.map((v, i) => `| ${v.name} | ${sets.map((_, s) => median(results[s][i]).toFixed(1)).join(' | ')} |`),
  '',
  ...sets.map((set, s) => {
    const perRound = results[s][def].map((x, r) => x / results[s][0][r]);
    return `${set.name}: default ÷ rows only, per round ${perRound.map((x) => x.toFixed(2)).join(', ')} (median ${median(perRound).toFixed(2)})`;
  }),
];
console.log(lines.join('\n'));
if (flags.json)
  await writeFile(
    flags.json,
    JSON.stringify(
      { cpu, dir, budget, variants: variants.map((v) => v.name), sets: sets.map((s) => s.name), meanTokens, results },
      null,
      2,
    ),
  );
