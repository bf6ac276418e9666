/**
 * MPNet and ELECTRA checkpoints written here (random weights, small unusual sizes: hidden 24 over
 * 3 heads, MPNet bias tables of 33 and 35 rows, ELECTRA embeddings narrower than the hidden size;
 * Hugging Face parameter names; safetensors), compiled by kiln, against the independent float64
 * reference (test/fixtures/reference-encoder.ts): classifier logits on padded batches with a row
 * at max length (fp32 from the checkpoint, int8 from its ONNX export), and mean-pooled unit
 * embeddings of the base models served in padded batches (MPNet's from its ONNX export, as Optimum
 * writes one: no token_type_ids, a last_hidden_state output).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { compile } from '../../src/compiler/compile.js';
import { importCheckpoint } from '../../src/import/import.js';
import { TextEmbedder } from '../../src/tasks/feature-extraction/model.js';
import { loadModel } from '../../src/tasks/registry.js';
import { graphRows, maxDelta } from '../fixtures/graph-rows.js';
import { tempDir } from '../fixtures/models.js';
import { paddedBatch } from '../fixtures/parts-checkpoints.js';
import { type CheckpointWeights, lookup, randomWeights, writeCheckpoint } from '../fixtures/random-checkpoint.js';
import { type ReferenceInput, referenceEmbeddings, referenceLogits } from '../fixtures/reference-encoder.js';
import { TINY_ELECTRA, TINY_MPNET } from '../fixtures/tiny-configs.js';

const MPNET_CLASSIFIER: Record<string, unknown> = {
  ...TINY_MPNET,
  architectures: ['MPNetForSequenceClassification'],
  // 38 tokens: distances up to 37 reach the logarithmic buckets (from distance 8 on).
  relative_attention_num_buckets: 35,
  id2label: { 0: 'neg', 1: 'neu', 2: 'pos' },
};

const ELECTRA_CLASSIFIER: Record<string, unknown> = {
  ...TINY_ELECTRA,
  architectures: ['ElectraForSequenceClassification'],
  id2label: { 0: 'no', 1: 'yes' },
};

const MPNET_BASE: Record<string, unknown> = {
  ...MPNET_CLASSIFIER,
  architectures: ['MPNetModel'],
  relative_attention_num_buckets: 33,
  id2label: undefined,
};
const ELECTRA_BASE: Record<string, unknown> = {
  ...ELECTRA_CLASSIFIER,
  architectures: ['ElectraModel'],
  hidden_act: 'gelu',
  embedding_size: 16,
  id2label: undefined,
};

/** A base model's names as its save_pretrained writes them: without the model prefix (`mpnet.`, `electra.`). */
function baseWeights(config: Record<string, unknown>, seed: number): CheckpointWeights {
  const prefix = `${config.model_type}.`;
  const weights = randomWeights(config, seed);
  return new Map([...weights].map(([name, w]) => [name.startsWith(prefix) ? name.slice(prefix.length) : name, w]));
}

/** Runs an artifact's graph on explicit tensors (the inputs in `names`), as a replica does. */
function runArtifact(artifactDir: string, input: ReferenceInput, names: string[]): Promise<number[][]> {
  return graphRows(join(artifactDir, 'model.onnx'), input, 'disabled', names);
}

let dir: string;
before(async () => {
  dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
});

describe('MPNet and ELECTRA classifiers match the float64 reference within 1e-4', () => {
  const cases = [
    { name: 'mpnet', config: MPNET_CLASSIFIER, maxLength: 38, inputs: ['input_ids', 'attention_mask'] },
    {
      name: 'electra',
      config: ELECTRA_CLASSIFIER,
      maxLength: 20,
      inputs: ['input_ids', 'attention_mask', 'token_type_ids'],
    },
  ];
  for (const { name, config, maxLength, inputs } of cases) {
    test(`compile(${config.architectures}) logits equal referenceLogits, padded batch with a row at max length ${maxLength}; fp32 and int8`, async () => {
      const weights = randomWeights(config, 21);
      const checkpoint = await writeCheckpoint(join(dir, name), config, weights);
      const fp32 = await compile({ source: checkpoint, out: join(dir, `${name}.kiln`), cache: false, maxLength });
      assert.equal(fp32.manifest.task, 'text-classification');
      assert.deepEqual(
        fp32.manifest.model.inputs.map((i) => i.name),
        inputs,
        'MPNet takes no token_type_ids; ELECTRA does',
      );
      const fusions = fp32.manifest.model.fusions;
      console.log(`${name}: fusions ${JSON.stringify(fusions)}`);
      // Embedding norm + 2 per layer; the feed-forward GELU of each layer (ELECTRA's head GELU is a third).
      assert.ok(fusions.layerNorm >= 1 + 2 * 2, `layer norms fused: ${fusions.layerNorm}`);
      if (name === 'mpnet') assert.ok(fusions.gelu >= 2, `GELUs fused: ${fusions.gelu}`);

      const input = paddedBatch([3, 11, maxLength], maxLength, config.pad_token_id as number, 11);
      if (name === 'mpnet') delete input.tokenTypeIds;
      const expected = referenceLogits(config, lookup(weights), input);
      const actual = await runArtifact(fp32.artifactDir, input, inputs);
      const delta = maxDelta(actual, expected);
      console.log(`${name}: max |Δlogit| vs float64 reference = ${delta.toExponential(2)}`);
      assert.ok(delta <= 1e-4, `max |Δ| ${delta}`);
      assert.ok(maxDelta([actual[0]!], [actual[2]!]) > 1e-3, 'the rows differ');

      // int8 from the ONNX export (kiln import writes the folder Optimum does: onnx/model.onnx beside
      // config.json and the tokenizer), so the operator and I/O checks see the graph as an export.
      const exported = join(dir, `${name}-onnx`);
      await importCheckpoint({ dir: checkpoint, out: exported });
      const int8 = await compile({
        source: exported,
        out: join(dir, `${name}-int8.kiln`),
        cache: false,
        maxLength,
        precision: 'int8',
      });
      assert.notEqual(int8.manifest.source.kind, 'hf-checkpoint', 'compiled from the ONNX graph');
      assert.deepEqual(
        int8.manifest.model.inputs.map((i) => i.name),
        inputs,
      );
      const quantized = await runArtifact(int8.artifactDir, input, inputs);
      const drift = maxDelta(quantized, expected);
      const spread = Math.max(...expected.flat()) - Math.min(...expected.flat());
      console.log(`${name}: int8 max |Δlogit| = ${drift.toExponential(2)} (logits spread ${spread.toFixed(3)})`);
      assert.ok(drift > 0 && drift < 0.1 * spread, `int8 runs and stays near fp32: ${drift} of ${spread}`);
    });
  }
});

describe('MPNetModel and ElectraModel embeddings match the float64 reference within 1e-4', () => {
  const cases = [
    // From its ONNX export: input_ids and attention_mask, a last_hidden_state output.
    { name: 'mpnet-base', config: MPNET_BASE, maxLength: 38, viaOnnx: true },
    { name: 'electra-base', config: ELECTRA_BASE, maxLength: 20, viaOnnx: false },
  ];
  for (const { name, config, maxLength, viaOnnx } of cases) {
    test(`compile(${config.architectures}${viaOnnx ? ' ONNX export' : ' checkpoint'}) mean-pooled unit vectors equal referenceEmbeddings, rows batched with padding and one at max length ${maxLength}`, async () => {
      const weights = baseWeights(config, 23);
      const checkpoint = await writeCheckpoint(join(dir, name), config, weights);
      const source = viaOnnx ? join(dir, `${name}-onnx`) : checkpoint;
      if (viaOnnx) await importCheckpoint({ dir: checkpoint, out: source });
      const { artifactDir, manifest } = await compile({
        source,
        out: join(dir, `${name}.kiln`),
        cache: false,
        maxLength,
      });
      assert.equal(manifest.task, 'feature-extraction');
      assert.deepEqual(manifest.embedding?.pooling, 'mean');
      assert.equal(manifest.embedding?.normalize, true);
      const rows = paddedBatch([2, 7, 13, maxLength], maxLength, config.pad_token_id as number, 11).inputIds.map(
        (ids, r) => ids.slice(0, [2, 7, 13, maxLength][r]),
      );
      const model = await loadModel(artifactDir, { replicas: 1, maxDelayMs: 50 });
      try {
        assert.ok(model instanceof TextEmbedder);
        const vectors = await model.embedTokens(rows.map((ids) => ({ ids })));
        const stats = model.stats();
        assert.ok(stats.paddedTokens > stats.realTokens, 'the rows were padded together');
        const expected = rows.flatMap((ids) =>
          referenceEmbeddings(
            config,
            lookup(weights),
            { inputIds: [ids], attentionMask: [ids.map(() => 1)] },
            { pooling: 'mean', normalize: true },
          ),
        );
        const delta = maxDelta(vectors, expected);
        console.log(`${name}: max |Δ| vs float64 reference ${delta.toExponential(2)} over ${rows.length} rows × 24`);
        assert.ok(delta <= 1e-4, `max |Δ| ${delta}`);
        for (const v of vectors) assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5, 'unit length');
      } finally {
        await model.close();
      }
    });
  }
});
