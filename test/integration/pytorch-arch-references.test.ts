/**
 * MPNet, ELECTRA, DeBERTa-v2 (v3 style) and ModernBERT checkpoints made by PyTorch, not by kiln's
 * tests (test/fixtures/pytorch/make_arch_references.py: random weights, small unusual configs,
 * Hugging Face names, safetensors in F32, F16, BF16 and one sharded with its index), compiled by
 * kiln in fp32: classifier logits and mean-pooled unit embeddings of padded id batches (one row
 * at max length) within 1e-4 of PyTorch's float64 forward of the same checkpoint
 * (test/fixtures/pytorch/encoders.py, written from transformers' modeling files). Their
 * vocabularies have 160 tokens: compile's memory probe used to feed token id 1000 and fail on them.
 * Where /usr/bin/python3 has torch, the generator is rerun and must give the committed files again.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { maxDelta } from '../fixtures/graph-rows.js';
import { REPO, tempDir } from '../fixtures/models.js';
import { compiledRows } from '../fixtures/parts-checkpoints.js';
import { assertRerunGivesCommitted, torchMissing } from '../fixtures/pytorch-rerun.js';

interface Reference {
  name: string;
  architecture: string;
  dtype: 'float32' | 'float16' | 'bfloat16';
  sharded: boolean;
  output: 'logits' | 'embeddings';
  maxLength: number;
  inputIds: number[][];
  attentionMask: number[][];
  tokenTypeIds: number[][];
  expected: number[][];
}

const FIXTURES = join(REPO, 'test', 'fixtures', 'pytorch', 'arch');
const GENERATOR = join(REPO, 'test', 'fixtures', 'pytorch', 'make_arch_references.py');
const { cases } = JSON.parse(readFileSync(join(FIXTURES, 'references.json'), 'utf8')) as { cases: Reference[] };
const config = (name: string): Record<string, unknown> =>
  JSON.parse(readFileSync(join(FIXTURES, name, 'config.json'), 'utf8'));

let dir: string;
before(async () => {
  dir = await tempDir('kiln-torchref-');
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
});

test('the fixtures hold what the issue asks for: every family base + classifier, each dtype, a sharded one, v3 buckets with a shared key, a window shorter than the inputs', () => {
  assert.deepEqual(
    cases.map((c) => c.architecture),
    [
      'MPNetForSequenceClassification',
      'MPNetModel',
      'ElectraForSequenceClassification',
      'ElectraModel',
      'DebertaV2ForSequenceClassification',
      'DebertaV2Model',
      'ModernBertForSequenceClassification',
      'ModernBertModel',
    ],
  );
  assert.deepEqual([...new Set(cases.map((c) => c.dtype))].sort(), ['bfloat16', 'float16', 'float32']);
  assert.ok(cases.some((c) => c.sharded));
  for (const c of cases) {
    assert.ok(
      c.attentionMask.some((row) => row.every((m) => m === 1)),
      `${c.name}: a row at max length`,
    );
    assert.ok(
      c.attentionMask.some((row) => row.includes(0)),
      `${c.name}: padded rows`,
    );
  }
  for (const name of ['deberta-v3-classifier', 'deberta-v3-base']) {
    const raw = config(name);
    assert.ok((raw.position_buckets as number) > 0 && raw.share_att_key === true, name);
  }
  for (const name of ['modernbert-classifier', 'modernbert-base']) {
    const width = cases.find((c) => c.name === name)!.maxLength;
    assert.ok((config(name).local_attention as number) / 2 < width - 1, `${name}: the window is shorter than the rows`);
  }
});

describe('kiln fp32 equals the PyTorch float64 reference within 1e-4', () => {
  for (const c of cases) {
    test(`${c.name} (${c.architecture}, ${c.dtype}${c.sharded ? ', sharded' : ''}): ${c.output} of ${c.inputIds.length} padded rows`, async () => {
      const { rows } = await compiledRows(
        join(FIXTURES, c.name),
        { inputIds: c.inputIds, attentionMask: c.attentionMask, tokenTypeIds: c.tokenTypeIds },
        {
          out: join(dir, `${c.name}.kiln`),
          maxLength: c.maxLength,
          ...(c.output === 'embeddings' ? { pooling: 'mean' as const, normalize: true } : {}),
        },
      );
      assert.equal(rows.length, c.expected.length);
      assert.equal(rows[0]!.length, c.expected[0]!.length);
      const delta = maxDelta(rows, c.expected);
      console.log(`${c.name}: max |Δ| ${c.output} = ${delta.toExponential(2)}`);
      assert.ok(delta <= 1e-4, `max |Δ| ${delta}`);
      // A graph that ignored its input would fail above only if the reference rows differ.
      assert.ok(maxDelta([c.expected[0]!], [c.expected[1]!]) > 1e-2, 'the reference rows differ');
    });
  }
});

describe('make_arch_references.py', () => {
  const missing = torchMissing();
  test('rerun into a temporary folder, gives the committed checkpoints byte for byte and references.json', {
    skip: missing ?? false,
    timeout: 120_000,
  }, async () => {
    // references.json records the torch version that wrote it; another version's equal figures pass.
    await assertRerunGivesCommitted(GENERATOR, FIXTURES, {
      json: ['references.json'],
      ignoredKeys: ['torch'],
      timeoutMs: 110_000,
    });
  });
});
