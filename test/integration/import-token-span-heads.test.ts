/**
 * Token-classification and question-answering heads of MPNet, ELECTRA, DeBERTa-v2 and ModernBERT
 * checkpoints (random weights, small unusual sizes, Hugging Face names, safetensors) compiled by
 * kiln: the task is inferred from the class name, and every token's logits (token heads) or
 * start and end logits (QA heads) equal the independent float64 references within 1e-4, rows
 * padded in one batch with one at the full width. The masked-LM classes that ModernBERT and
 * DeBERTa-v3 checkpoints name compile as base encoders (their MLM head ignored), embeddings
 * equal to the reference's.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { compile } from '../../src/compiler/compile.js';
import { encoderConfig, SUPPORTED_ARCHITECTURES } from '../../src/import/architectures.js';
import { MANIFEST_FILE, type Manifest } from '../../src/model/artifact.js';
import { graphRows, maxDelta } from '../fixtures/graph-rows.js';
import { tempDir } from '../fixtures/models.js';
import { compiledRows, paddedBatch, randomPartsWeights } from '../fixtures/parts-checkpoints.js';
import { type CheckpointWeights, lookup, VOCAB, writeCheckpoint } from '../fixtures/random-checkpoint.js';
import { debertaV2Embeddings, debertaV2TokenOutputs } from '../fixtures/reference-deberta-v2.js';
import {
  type ReferenceInput,
  referenceSpanLogits,
  referenceTokenLogits,
  type Weights,
} from '../fixtures/reference-encoder.js';
import { modernBertEmbeddings, modernBertTokenOutputs } from '../fixtures/reference-modernbert.js';
import {
  DEBERTA_V3_ATTENTION,
  TINY_DEBERTA_V2,
  TINY_ELECTRA,
  TINY_MODERNBERT,
  TINY_MPNET,
} from '../fixtures/tiny-configs.js';

// 38 tokens: distances past 8 reach the logarithmic buckets.
const MPNET: Record<string, unknown> = { ...TINY_MPNET, relative_attention_num_buckets: 32 };

const ELECTRA: Record<string, unknown> = TINY_ELECTRA;

/** DeBERTa-v3's shape: log buckets past ±4, shared key, normalized relative embeddings. */
const DEBERTA: Record<string, unknown> = { ...TINY_DEBERTA_V2, ...DEBERTA_V3_ATTENTION };

/** Layers 0 and 2 global, 1 and 3 local with a window of ±3, shorter than the inputs; a biased head. */
const MODERNBERT: Record<string, unknown> = {
  ...TINY_MODERNBERT,
  norm_bias: true,
  classifier_activation: 'silu',
  classifier_bias: true,
};

const NER_LABELS = { 0: 'O', 1: 'B-PER', 2: 'I-PER', 3: 'B-LOC', 4: 'I-LOC' };

interface Family {
  /** The class-name prefix: `MPNet` → MPNetForTokenClassification. */
  classPrefix: string;
  config: Record<string, unknown>;
  width: number;
  /** Per-token outputs [batch][token][column] from the family's float64 reference. */
  token: (config: Record<string, unknown>, weights: Weights, input: ReferenceInput) => number[][][];
  span: (config: Record<string, unknown>, weights: Weights, input: ReferenceInput) => number[][][];
}

/** reference-encoder's span logits as [batch][token][start, end]. */
const encoderSpan: Family['span'] = (config, weights, input) =>
  referenceSpanLogits(config, weights, input).map(({ start, end }) => start.map((s, t) => [s, end[t]!]));

const FAMILIES: Family[] = [
  { classPrefix: 'MPNet', config: MPNET, width: 38, token: referenceTokenLogits, span: encoderSpan },
  { classPrefix: 'Electra', config: ELECTRA, width: 20, token: referenceTokenLogits, span: encoderSpan },
  {
    classPrefix: 'DebertaV2',
    config: DEBERTA,
    width: 24,
    token: (c, w, i) => debertaV2TokenOutputs(c, w, i, 'classifier'),
    span: (c, w, i) => debertaV2TokenOutputs(c, w, i, 'qa_outputs'),
  },
  {
    classPrefix: 'ModernBert',
    config: MODERNBERT,
    width: 20,
    token: modernBertTokenOutputs,
    span: modernBertTokenOutputs,
  },
];

/** The compiled graph's first output on `input` (one row per sequence), read as [batch][token][column]. */
async function tokenRows(artifactDir: string, input: ReferenceInput, head: 'token' | 'span'): Promise<number[][][]> {
  const rows = await graphRows(join(artifactDir, 'model.onnx'), input, 'disabled');
  const width = input.inputIds[0]!.length;
  assert.equal(rows.length, input.inputIds.length);
  return rows.map((row) => {
    if (head === 'span') {
      // span_logits [batch, 2 × width]: the starts, then the ends (compile's question-answering tail).
      assert.equal(row.length, 2 * width);
      return Array.from({ length: width }, (_, t) => [row[t]!, row[width + t]!]);
    }
    // logits [batch, width, labels], a row holding each token's labels in turn.
    const labels = row.length / width;
    assert.ok(Number.isInteger(labels), `a row of ${row.length} values is not ${width} tokens' labels`);
    return Array.from({ length: width }, (_, t) => row.slice(t * labels, (t + 1) * labels));
  });
}

let dir: string;
before(async () => {
  dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
});

describe('token-classification and question-answering heads equal the float64 references within 1e-4', () => {
  const heads = [
    { head: 'token', suffix: 'ForTokenClassification', task: 'token-classification', id2label: NER_LABELS },
    {
      head: 'span',
      suffix: 'ForQuestionAnswering',
      task: 'question-answering',
      id2label: { 0: 'LABEL_0', 1: 'LABEL_1' },
    },
  ] as const;
  for (const family of FAMILIES) {
    for (const { head, suffix, task, id2label } of heads) {
      const architecture = `${family.classPrefix}${suffix}`;
      test(`compile(${architecture}) infers ${task}; outputs of rows of 3, 11 and ${family.width} tokens padded in one batch`, async () => {
        const config = { ...family.config, architectures: [architecture], id2label };
        assert.ok(SUPPORTED_ARCHITECTURES.includes(architecture));
        const weights: CheckpointWeights = randomPartsWeights(config, 31);
        const checkpoint = await writeCheckpoint(join(dir, architecture), config, weights);
        const { artifactDir, manifest } = await compile({
          source: checkpoint,
          out: join(dir, `${architecture}.kiln`),
          cache: false,
          maxBatch: 4,
          maxLength: family.width,
        });
        assert.equal(manifest.task, task);

        const input = paddedBatch([3, 11, family.width], family.width, family.config.pad_token_id as number);
        const expected = (head === 'token' ? family.token : family.span)(config, lookup(weights), input);
        const actual = await tokenRows(artifactDir, input, head);
        // Real tokens only: what a padded position gets differs by family (DeBERTa masks its
        // queries too) and no task reads it.
        const real = (rows: number[][][]) =>
          rows.map((row, r) => row.filter((_, t) => input.attentionMask[r]![t] === 1));
        const delta = Math.max(...real(actual).map((rows, r) => maxDelta(rows, real(expected)[r]!)));
        console.log(`${architecture}: max |Δ| vs float64 reference = ${delta.toExponential(2)}`);
        assert.ok(delta <= 1e-4, `max |Δ| ${delta}`);
        assert.equal(actual[0]![0]!.length, head === 'token' ? 5 : 2);
        assert.ok(maxDelta([actual[1]![1]!], [actual[1]![2]!]) > 1e-3, 'tokens differ');
      });
    }
  }

  test('an architecture kiln cannot build → KILN_ERR_IMPORT_ARCHITECTURE listing the new heads', () => {
    assert.throws(() => encoderConfig({ architectures: ['FunnelForTokenClassification'] }, 'config.json'), {
      code: 'KILN_ERR_IMPORT_ARCHITECTURE',
      message: /ModernBertForTokenClassification.*ModernBertForQuestionAnswering/s,
    });
  });
});

describe('masked-LM checkpoints compile as base encoders (their MLM head ignored)', () => {
  const cases = [
    {
      architecture: 'ModernBertForMaskedLM',
      config: MODERNBERT,
      prefix: 'model.',
      // ModernBertForMaskedLM's head and decoder, which kiln does not build.
      mlm: [
        ['head.dense.weight', [16, 16]],
        ['decoder.bias', [VOCAB]],
      ],
      reference: modernBertEmbeddings,
      width: 20,
    },
    {
      architecture: 'DebertaV2ForMaskedLM',
      config: DEBERTA,
      prefix: 'deberta.',
      mlm: [
        ['lm_predictions.lm_head.dense.weight', [16, 16]],
        ['lm_predictions.lm_head.bias', [VOCAB]],
      ],
      reference: debertaV2Embeddings,
      width: 24,
    },
  ] as const;
  for (const c of cases) {
    test(`compile(${c.architecture}) is feature-extraction; mean-pooled unit vectors equal the base model's reference within 1e-4`, async () => {
      const base = randomPartsWeights({ ...c.config, architectures: [c.architecture] }, 32);
      const checkpoint: CheckpointWeights = new Map(base);
      for (const [name, shape] of c.mlm)
        checkpoint.set(name, { shape: [...shape], data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.5) });
      assert.ok(
        [...base.keys()].every((name) => name.startsWith(c.prefix)),
        'the base model under its prefix',
      );
      const config = { ...c.config, architectures: [c.architecture] };
      const source = await writeCheckpoint(join(dir, c.architecture), config, checkpoint);
      const input = paddedBatch([5, c.width, 2], c.width, 0);
      const unprefixed = new Map([...base].map(([name, w]) => [name.slice(c.prefix.length), w]));
      const expected = c.reference(config, lookup(unprefixed), input);
      const { rows, artifactDir } = await compiledRows(source, input, {
        out: join(dir, `${c.architecture}.kiln`),
        maxLength: c.width,
      });
      const manifest = JSON.parse(await readFile(join(artifactDir, MANIFEST_FILE), 'utf8')) as Manifest;
      assert.equal(manifest.task, 'feature-extraction');
      const delta = maxDelta(rows, expected);
      console.log(`${c.architecture}: max |Δ| embedding = ${delta.toExponential(2)}`);
      assert.ok(delta <= 1e-4, `max |Δ| ${delta}`);
    });
  }
});
