/**
 * Scores that fit the head, on random-weight BERT classifiers checked against the float64
 * reference: one logit → its sigmoid (softmax over one logit is 1 for every input),
 * `problem_type: "multi_label_classification"` → an independent sigmoid per label, otherwise
 * softmax; `functionToApply` (kiln compile --function-to-apply) overrides, and the manifest
 * records it (kiln inspect shows it).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { renderManifest } from '../../src/cli/commands/inspect.js';
import { compile } from '../../src/compiler/compile.js';
import { sigmoid, softmax } from '../../src/core/stats.js';
import type { ScoreFunction } from '../../src/model/artifact.js';
import { createServer, type KilnServer } from '../../src/server/server.js';
import { loadModel } from '../../src/tasks/registry.js';
import { tempDir } from '../fixtures/models.js';
import {
  type CheckpointWeights,
  lookup,
  randomWeights,
  tinyBertConfig,
  vocabIds,
  writeCheckpoint,
} from '../fixtures/random-checkpoint.js';
import { referenceLogits } from '../fixtures/reference-encoder.js';

const TEXTS = ['a great movie', 'the plot is bad', 'good film'];

interface Model {
  config: Record<string, unknown>;
  weights: CheckpointWeights;
  manifest: { functionToApply?: ScoreFunction };
  dir: string;
}

const MODELS: Record<string, { labels: string[]; extra?: Record<string, unknown>; functionToApply?: ScoreFunction }> = {
  single: { labels: ['LABEL_0'] },
  multi: { labels: ['toxic', 'insult', 'threat'], extra: { problem_type: 'multi_label_classification' } },
  plain: { labels: ['A', 'B', 'C'] },
  'plain-none': { labels: ['A', 'B', 'C'], functionToApply: 'none' },
  'multi-softmax': {
    labels: ['toxic', 'insult', 'threat'],
    extra: { problem_type: 'multi_label_classification' },
    functionToApply: 'softmax',
  },
};

const built = new Map<string, Model>();
let server: KilnServer;
let url: string;

before(async () => {
  const dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
  server = createServer({ port: 0 });
  url = await server.listen();
  for (const [name, spec] of Object.entries(MODELS)) {
    const config = tinyBertConfig(spec.labels, spec.extra);
    const weights = randomWeights(config, 5);
    const checkpoint = await writeCheckpoint(join(dir, name), config, weights);
    // A single-logit classifier is served as one here, whatever detection would call it.
    const { artifactDir, manifest } = await compile({
      source: checkpoint,
      out: join(dir, `${name}.kiln`),
      maxLength: 16,
      task: 'text-classification',
      functionToApply: spec.functionToApply,
    });
    server.model.set(await loadModel(artifactDir, { replicas: 1 }));
    built.set(name, { config, weights, manifest, dir: artifactDir });
  }
});
after(() => server?.close());

async function reference(model: Model, text: string): Promise<number[]> {
  const ids = [101, ...(await vocabIds(text)), 102];
  return referenceLogits(model.config, lookup(model.weights), {
    inputIds: [ids],
    attentionMask: [ids.map(() => 1)],
  })[0]!;
}

// biome-ignore lint/suspicious/noExplicitAny: answers are read field by field and asserted on.
async function predict(model: string): Promise<any[]> {
  const res = await fetch(`${url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, texts: TEXTS, return_all_scores: true }),
    signal: AbortSignal.timeout(20_000),
  });
  const body = (await res.json()) as { predictions: unknown[] };
  assert.equal(res.status, 200, JSON.stringify(body));
  // biome-ignore lint/suspicious/noExplicitAny: as above.
  return body.predictions as any[];
}

/** Largest gap between each answer's every-label scores and `expected(logits)` of the reference. */
async function worstGap(name: string, expected: (logits: number[]) => number[]): Promise<number> {
  const model = built.get(name)!;
  const predictions = await predict(name);
  let worst = 0;
  for (const [i, text] of TEXTS.entries()) {
    const want = expected(await reference(model, text));
    const got = (predictions[i].scores as Array<{ score: number }>).map((s) => s.score);
    assert.equal(got.length, want.length);
    got.forEach((v, j) => {
      worst = Math.max(worst, Math.abs(v - want[j]!));
    });
    assert.ok(Math.abs(predictions[i].score - Math.max(...want)) <= 1e-4, 'score is the top label’s');
  }
  return worst;
}

describe('classifier scores fit the head', () => {
  test('a num_labels 1 classifier scores sigmoid(logit), not softmax (1.0 for every input)', async () => {
    assert.equal(built.get('single')!.manifest.functionToApply, 'sigmoid');
    const gap = await worstGap('single', (logits) => logits.map(sigmoid));
    assert.ok(gap <= 1e-4, `max |Δ| ${gap}`);
    const scores = (await predict('single')).map((p) => p.score as number);
    assert.ok(
      scores.every((s) => s > 0 && s < 1),
      `scores ${scores}`,
    );
    assert.ok(new Set(scores).size === TEXTS.length, 'each input has its own score');
  });

  test('problem_type multi_label_classification → an independent sigmoid for every label', async () => {
    assert.equal(built.get('multi')!.manifest.functionToApply, 'sigmoid');
    const gap = await worstGap('multi', (logits) => logits.map(sigmoid));
    assert.ok(gap <= 1e-4, `max |Δ| ${gap}`);
    const sums = (await predict('multi')).map((p) =>
      (p.scores as Array<{ score: number }>).reduce((a, s) => a + s.score, 0),
    );
    assert.ok(
      sums.some((s) => Math.abs(s - 1) > 1e-3),
      'the labels are not one distribution',
    );
  });

  test('a plain 3-label classifier keeps softmax', async () => {
    assert.equal(built.get('plain')!.manifest.functionToApply, 'softmax');
    const gap = await worstGap('plain', softmax);
    assert.ok(gap <= 1e-4, `max |Δ| ${gap}`);
  });

  test('functionToApply overrides: none answers the logits, softmax overrides problem_type', async () => {
    assert.equal(built.get('plain-none')!.manifest.functionToApply, 'none');
    assert.ok((await worstGap('plain-none', (l) => l)) <= 1e-4);
    assert.equal(built.get('multi-softmax')!.manifest.functionToApply, 'softmax');
    assert.ok((await worstGap('multi-softmax', softmax)) <= 1e-4);
  });

  test('kiln inspect shows the score function', () => {
    const model = built.get('single')!;
    assert.match(renderManifest(model.dir, model.manifest as never), /scores\s+sigmoid of the logits/);
    const none = built.get('plain-none')!;
    assert.match(renderManifest(none.dir, none.manifest as never), /scores\s+the logits/);
  });
});
