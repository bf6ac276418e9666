/**
 * The prune pass (compiler/prune.ts): a graph whose outputs read only the first token computes
 * its last layer for that token alone, with the unpruned graph's answers within 1e-5 (and the
 * float64 reference's within 1e-4), on kiln's imported graphs, the embedded model (a PyTorch
 * export) and a CLS-pooled embedder; graphs that read other tokens are left as they were.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { compile } from '../../src/compiler/compile.js';
import { pruneToFirstToken } from '../../src/compiler/prune.js';
import { quantizeModel } from '../../src/compiler/quantize.js';
import { importCheckpoint } from '../../src/import/import.js';
import type { PruneReport } from '../../src/model/reports.js';
import { decodeModel, encodeModel, type ModelProto, onnx } from '../../src/onnx/proto.js';
import { inferShapes } from '../../src/onnx/shapes.js';
import { appendPooling } from '../../src/tasks/feature-extraction/pooling.js';
import { graphRows } from '../fixtures/graph-rows.js';
import { EMBEDDED_MODEL, randomFloats, tempDir } from '../fixtures/models.js';
import { lookup, randomWeights, VOCAB, writeCheckpoint } from '../fixtures/random-checkpoint.js';
import { type ReferenceInput, referenceLogits } from '../fixtures/reference-encoder.js';

const LABELS = { 0: 'A', 1: 'B', 2: 'C' };

/** Three layers, so that pruning the last one is told apart from pruning another. */
const CONFIGS: Record<string, Record<string, unknown>> = {
  bert: {
    architectures: ['BertForSequenceClassification'],
    model_type: 'bert',
    hidden_size: 16,
    num_hidden_layers: 3,
    num_attention_heads: 4,
    intermediate_size: 24,
    hidden_act: 'gelu',
    max_position_embeddings: 12,
    type_vocab_size: 2,
    vocab_size: VOCAB,
    layer_norm_eps: 1e-12,
    pad_token_id: 0,
    id2label: LABELS,
  },
  roberta: {
    architectures: ['RobertaForSequenceClassification'],
    model_type: 'roberta',
    hidden_size: 16,
    num_hidden_layers: 3,
    num_attention_heads: 2,
    intermediate_size: 32,
    hidden_act: 'gelu_new',
    max_position_embeddings: 14,
    type_vocab_size: 1,
    vocab_size: VOCAB,
    layer_norm_eps: 1e-5,
    pad_token_id: 1,
    id2label: LABELS,
  },
  distilbert: {
    architectures: ['DistilBertForSequenceClassification'],
    model_type: 'distilbert',
    dim: 16,
    n_layers: 3,
    n_heads: 4,
    hidden_dim: 20,
    activation: 'relu',
    max_position_embeddings: 12,
    vocab_size: VOCAB,
    pad_token_id: 0,
    id2label: LABELS,
  },
};

type Rows = number[][];

/** `lengths.length` rows padded to `width` (one of them usually `width` long), seeded ids. */
function paddedBatch(lengths: number[], width: number, pad: number, seed: number): ReferenceInput {
  let state = seed;
  const next = (): number => (state = (state * 48271) % 2147483647);
  return {
    inputIds: lengths.map((n) =>
      Array.from({ length: width }, (_, i) => (i === 0 ? 101 : i < n ? 2 + (next() % (VOCAB - 2)) : pad)),
    ),
    attentionMask: lengths.map((n) => Array.from({ length: width }, (_, i) => (i < n ? 1 : 0))),
    tokenTypeIds: lengths.map((n) => Array.from({ length: width }, (_, i) => (i < n && i >= n / 2 ? 1 : 0))),
  };
}

/** The graph's first output for `input`, one row per sequence (a row of any width). */
function run(path: string, input: ReferenceInput): Promise<Rows> {
  return graphRows(path, input, 'all');
}

function maxDelta(a: Rows, b: Rows): number {
  assert.equal(a.length, b.length);
  let max = 0;
  a.forEach((row, r) => {
    assert.equal(row.length, b[r]!.length);
    row.forEach((v, c) => {
      max = Math.max(max, Math.abs(v - b[r]![c]!));
    });
  });
  return max;
}

async function write(model: ModelProto, path: string): Promise<string> {
  await writeFile(path, encodeModel(model));
  return path;
}

function pruned(report: PruneReport): Extract<PruneReport, { pruned: true }> {
  assert.ok(report.pruned, `not pruned: ${report.pruned ? '' : report.reason}`);
  return report;
}

let dir: string;
before(async () => {
  dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
});

let imports = 0;
/** CONFIGS[name] with random weights (seed 3), imported as compile imports it. */
async function imported(name: string, options: { headless?: boolean } = {}): Promise<ModelProto> {
  const config = CONFIGS[name]!;
  imports += 1;
  const checkpoint = join(dir, `${name}-checkpoint-${imports}`);
  await writeCheckpoint(checkpoint, config, randomWeights(config, 3));
  const out = join(dir, `${name}-imported-${imports}`);
  await importCheckpoint({ dir: checkpoint, out, headless: options.headless });
  const path = join(out, 'onnx', 'model.onnx');
  return decodeModel(await readFile(path), path);
}

describe("kiln's imported classifiers: the last layer computes token 0 only, the logits do not change", () => {
  for (const [name, config] of Object.entries(CONFIGS)) {
    test(`pruneToFirstToken(${name}) equals the unpruned graph within 1e-5 on padded batches with a row at max positions`, async () => {
      const model = await imported(name);
      const result = pruneToFirstToken(model, { length: 8 });
      const report = pruned(result.report);
      // The last layer's four weight products (query, attention output, FFN in and out), and no other layer's.
      assert.equal(report.weightProducts.length, 4);
      for (const node of report.weightProducts) assert.match(node, /layer\.2\b/);
      assert.ok(report.flops.after < report.flops.before);

      const pad = config.pad_token_id as number;
      const width = (config.max_position_embeddings as number) - (config.model_type === 'roberta' ? pad + 1 : 0);
      const full = await write(model, join(dir, `${name}-full.onnx`));
      const cut = await write(result.model, join(dir, `${name}-pruned.onnx`));
      for (const [k, lengths] of [
        [[1, 2, width], width],
        [[width], width],
        [[3, 5, 4, 2], 6],
      ].entries() as Iterable<[number, [number[], number]]>) {
        const [rows, w] = lengths;
        const input = paddedBatch(rows, w, pad, 11 + k);
        if (config.model_type !== 'bert') delete input.tokenTypeIds;
        const [before, after] = [await run(full, input), await run(cut, input)];
        const delta = maxDelta(after, before);
        assert.ok(delta <= 1e-5, `${name} batch ${k}: max |Δlogit| ${delta}`);
        const reference = referenceLogits(config, lookup(randomWeights(config, 3)), input);
        assert.ok(maxDelta(after, reference) <= 1e-4, `${name} batch ${k} vs float64 reference`);
        // The rows differ, so equal answers are not equal constants.
        if (rows.length > 1) assert.ok(maxDelta([after[0]!], [after[1]!]) > 1e-3);
      }
    });
  }
});

describe('the embedded model (a PyTorch export, opset 14): the pattern is found', () => {
  test('pruneToFirstToken(sst2-distilbert-tiny) prunes layer.3 and keeps the logits within 1e-5', async () => {
    const path = join(EMBEDDED_MODEL, 'onnx', 'model.onnx');
    const model = decodeModel(await readFile(path), path);
    const result = pruneToFirstToken(model, { length: 128 });
    const report = pruned(result.report);
    assert.deepEqual(report.weightProducts, [
      '/layer.3/q_lin/MatMul',
      '/layer.3/out_lin/MatMul',
      '/layer.3/lin1/MatMul',
      '/layer.3/lin2/MatMul',
    ]);
    // 4 layers: the last layer's products but its keys and values (4 of 6 per layer) run once instead of 128 times.
    const saved = 1 - report.flops.after / report.flops.before;
    assert.ok(saved > 0.2 && saved < 0.25, `saved ${saved}`);
    const cut = await write(result.model, join(dir, 'sst2-pruned.onnx'));
    for (const [k, lengths] of [
      [1, 9, 128],
      [128, 128],
      [2, 3, 17, 40, 5],
    ].entries()) {
      const input = paddedBatch(lengths, Math.max(...lengths), 0, 5 + k);
      delete input.tokenTypeIds;
      const delta = maxDelta(await run(cut, input), await run(path, input));
      assert.ok(delta <= 1e-5, `batch ${k}: max |Δlogit| ${delta}`);
    }
  });

  test('inferShapes(sst2-distilbert-tiny) follows the PyTorch shape arithmetic to the attention reshapes', async () => {
    const path = join(EMBEDDED_MODEL, 'onnx', 'model.onnx');
    const facts = inferShapes(decodeModel(await readFile(path), path));
    assert.deepEqual(facts.shape('/layer.3/Reshape_output_0'), ['batch_size', 'sequence_length', 4, 32]);
    assert.deepEqual(facts.shape('/layer.3/Softmax_output_0'), ['batch_size', 4, 'sequence_length', 'sequence_length']);
    assert.deepEqual(facts.shape('/layer.3/Reshape_3_output_0'), ['batch_size', 1, 1, 'sequence_length']);
    assert.deepEqual(facts.shape('logits'), ['batch_size', 2]);
  });
});

describe('graphs whose outputs read more than token 0 are left unchanged', () => {
  test('a headless encoder (last_hidden_state), mean pooling and max pooling: not pruned', async () => {
    const model = await imported('bert', { headless: true });
    assert.deepEqual(pruneToFirstToken(model, { length: 8 }).report, {
      pruned: false,
      reason: 'the outputs read every token',
    });
    for (const pooling of ['mean', 'max'] as const) {
      const pooled = appendPooling(
        model,
        { pooling, normalize: true, hiddenOutput: 'last_hidden_state', hidden: 16 },
        'x',
      );
      const result = pruneToFirstToken(pooled, { length: 8 });
      assert.equal(result.report.pruned, false, pooling);
      assert.equal(result.model, pooled);
    }
  });

  test('CLS pooling reads token 0: pruned, the embeddings equal the unpruned ones within 1e-5', async () => {
    const model = await imported('roberta', { headless: true });
    const pooled = appendPooling(
      model,
      { pooling: 'cls', normalize: true, hiddenOutput: 'last_hidden_state', hidden: 16 },
      'x',
    );
    const result = pruneToFirstToken(pooled, { length: 8 });
    assert.equal(pruned(result.report).weightProducts.length, 4);
    const input = paddedBatch([2, 12, 6], 12, 1, 3);
    delete input.tokenTypeIds;
    const before = await run(await write(pooled, join(dir, 'cls-full.onnx')), input);
    const after = await run(await write(result.model, join(dir, 'cls-pruned.onnx')), input);
    assert.equal(after[0]!.length, 16);
    assert.ok(maxDelta(after, before) <= 1e-5, `max |Δ| ${maxDelta(after, before)}`);
  });

  test('a token-classification head (a logit per token) and a graph that also outputs the token states: not pruned', async () => {
    const headless = await imported('bert', { headless: true });
    const graph = headless.graph!;
    const perToken: ModelProto = {
      ...headless,
      graph: {
        ...graph,
        node: [
          ...graph.node!,
          {
            opType: 'MatMul',
            name: '/token_head/MatMul',
            input: ['last_hidden_state', 'token_head.W'],
            output: ['token_logits'],
          },
        ],
        initializer: [
          ...graph.initializer!,
          { name: 'token_head.W', dataType: 1, dims: [16, 5], floatData: Array.from(randomFloats(80, 9)) },
        ],
        output: [{ ...graph.output![0]!, name: 'token_logits' }],
      },
    } as ModelProto;
    assert.equal(pruneToFirstToken(perToken, { length: 8 }).report.pruned, false);

    const classifier = await imported('bert');
    const head = classifier.graph!.node!.find((n) => n.name === '/head/first_token')!;
    const both = {
      ...classifier,
      graph: {
        ...classifier.graph,
        output: [...classifier.graph!.output!, { ...headless.graph!.output![0]!, name: head.input![0]! }],
      },
    } as ModelProto;
    assert.equal(pruneToFirstToken(both, { length: 8 }).report.pruned, false);
  });

  test('a head on token 1 (not the first) is not pruned', async () => {
    const classifier = await imported('distilbert');
    const graph = classifier.graph!;
    const second = { name: 'second_token', dataType: onnx.TensorProto.DataType.INT64, dims: [], int64Data: [1] };
    const node = graph.node!.map((n) =>
      n.name === '/head/first_token' ? { ...n, input: [n.input![0]!, 'second_token'] } : n,
    );
    const model = {
      ...classifier,
      graph: { ...graph, node, initializer: [...graph.initializer!, second] },
    } as ModelProto;
    assert.deepEqual(pruneToFirstToken(model, { length: 8 }).report, {
      pruned: false,
      reason: 'the outputs read every token',
    });
  });
});

describe('int8 of a pruned graph', () => {
  test('quantizeModel(pruned) stays as close to the fp32 logits as quantizeModel(unpruned)', async () => {
    const path = join(EMBEDDED_MODEL, 'onnx', 'model.onnx');
    const model = decodeModel(await readFile(path), path);
    const cut = pruneToFirstToken(model, { length: 128 }).model;
    const int8Full = await write(quantizeModel(model).model, join(dir, 'int8-full.onnx'));
    const int8Cut = await write(quantizeModel(cut).model, join(dir, 'int8-pruned.onnx'));
    const input = paddedBatch([3, 128, 20, 9, 64, 7], 128, 0, 17);
    delete input.tokenTypeIds;
    const fp32 = await run(path, input);
    const [full, pruned8] = [await run(int8Full, input), await run(int8Cut, input)];
    const [errFull, errCut, between] = [maxDelta(full, fp32), maxDelta(pruned8, fp32), maxDelta(pruned8, full)];
    console.log(
      `int8 max |Δlogit|: unpruned vs fp32 ${errFull.toExponential(2)}, pruned vs fp32 ${errCut.toExponential(2)}, pruned vs unpruned ${between.toExponential(2)}`,
    );
    assert.ok(errCut <= 2 * errFull + 1e-3, `pruned int8 error ${errCut} vs unpruned ${errFull}`);
  });
});

describe('compile with and without pruning', () => {
  test('compile() prunes by default and records it; prune: false does not; the compiled logits agree within 1e-5', async () => {
    const config = CONFIGS.bert!;
    const checkpoint = await writeCheckpoint(join(dir, 'compile-bert'), config, randomWeights(config, 4));
    const on = await compile({ source: checkpoint, out: join(dir, 'on.kiln'), maxLength: 12, maxBatch: 4 });
    const off = await compile({
      source: checkpoint,
      out: join(dir, 'off.kiln'),
      maxLength: 12,
      maxBatch: 4,
      prune: false,
    });
    const report = pruned(on.manifest.pruning!);
    assert.equal(report.flops.length, 12);
    assert.equal(on.manifest.compile.options.prune, true);
    assert.deepEqual(off.manifest.pruning, { pruned: false, reason: 'turned off (--no-prune)' });
    assert.notEqual(on.cacheKey, off.cacheKey);
    for (const [k, lengths] of [
      [[12, 1, 4], 12],
      [[5, 5], 5],
    ].entries() as Iterable<[number, [number[], number]]>) {
      const input = paddedBatch(lengths[0], lengths[1], 0, 23 + k);
      const a = await run(join(on.artifactDir, 'model.onnx'), input);
      const b = await run(join(off.artifactDir, 'model.onnx'), input);
      assert.ok(maxDelta(a, b) <= 1e-5, `batch ${k}: ${maxDelta(a, b)}`);
    }
  });
});
