/**
 * canonicalShapes (what `kiln synth` writes and tests fill) for a BERT-shaped base model: the
 * tensors its transformers `…Model` class holds, its pooler where it builds one, and no head (a
 * base model once fell through to the classifier with 0 labels: classifier.weight [0, H]).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encoderConfig } from '../../src/import/architectures.js';
import { canonicalShapes } from '../../src/import/synth.js';

const SIZES = { hidden_size: 32, num_attention_heads: 4, num_hidden_layers: 1, intermediate_size: 64 };
const DISTIL_SIZES = { dim: 32, n_heads: 4, n_layers: 1, hidden_dim: 64 };

/** [architecture, model_type, sizes, the pooler the base model class builds, or null]. */
const BASE_MODELS: Array<[string, string, Record<string, unknown>, string | null]> = [
  ['BertModel', 'bert', SIZES, 'bert.pooler.dense'],
  ['RobertaModel', 'roberta', SIZES, 'roberta.pooler.dense'],
  ['XLMRobertaModel', 'xlm-roberta', SIZES, 'roberta.pooler.dense'],
  ['DistilBertModel', 'distilbert', DISTIL_SIZES, null],
  ['ElectraModel', 'electra', { ...SIZES, embedding_size: 32 }, null],
  ['MPNetModel', 'mpnet', SIZES, 'mpnet.pooler.dense'],
];
/** Names only the heads' modules have, in every BERT-shaped family. */
const HEAD = /^(classifier|pre_classifier|qa_outputs)\./;

for (const [architecture, modelType, sizes, pooler] of BASE_MODELS) {
  test(`canonicalShapes(${architecture}) has ${pooler ?? 'no pooler'} and no classifier tensors`, () => {
    const config = encoderConfig({ architectures: [architecture], model_type: modelType, ...sizes }, 'config.json');
    const shapes = canonicalShapes(config, 100);
    const names = shapes.map(([name]) => name);
    assert.deepEqual(
      names.filter((name) => HEAD.test(name)),
      [],
    );
    assert.deepEqual(
      shapes.filter(([, shape]) => shape.includes(0)),
      [],
    );
    assert.deepEqual(
      names.filter((name) => name.includes('pooler')),
      pooler ? [`${pooler}.weight`, `${pooler}.bias`] : [],
    );
  });
}

test('canonicalShapes(all-MiniLM-L6-v2, a BertModel) has the public checkpoint’s 22,713,216 parameters', () => {
  const config = encoderConfig(
    {
      architectures: ['BertModel'],
      model_type: 'bert',
      hidden_size: 384,
      intermediate_size: 1536,
      num_attention_heads: 12,
      num_hidden_layers: 6,
    },
    'config.json',
  );
  const shapes = canonicalShapes(config, 30522);
  assert.equal(
    shapes.reduce((n, [, shape]) => n + shape.reduce((a, b) => a * b, 1), 0),
    22_713_216,
  );
});
