/**
 * Compile's task detection for DeBERTa-v2 and ModernBERT configs: the base models serve
 * embeddings (kiln's pooling), the sequence classifiers text-classification, zero-shot
 * classification with NLI labels, or text-ranking with one label (cross-encoders); the importer builds each of them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SUPPORTED_ARCHITECTURES } from '../../src/import/architectures.js';
import { taskFromArchitecture } from '../../src/tasks/registry.js';

const CASES: Array<[string, string[], string]> = [
  ['DebertaV2Model', [], 'feature-extraction'],
  ['ModernBertModel', [], 'feature-extraction'],
  ['DebertaV2ForSequenceClassification', ['anger', 'joy', 'sadness'], 'text-classification'],
  // An NLI head (entailment and contradiction among its labels) is a zero-shot classifier.
  ['DebertaV2ForSequenceClassification', ['entailment', 'neutral', 'contradiction'], 'zero-shot-classification'],
  ['ModernBertForSequenceClassification', ['NEGATIVE', 'POSITIVE'], 'text-classification'],
  ['DebertaV2ForSequenceClassification', ['LABEL_0'], 'text-ranking'],
  ['ModernBertForSequenceClassification', ['LABEL_0'], 'text-ranking'],
];

for (const [architecture, labels, task] of CASES) {
  test(`taskFromArchitecture(${architecture}, ${labels.length} labels) is ${task}, and kiln import builds it`, () => {
    assert.equal(taskFromArchitecture({ architectures: [architecture], labels }), task);
    assert.ok(SUPPORTED_ARCHITECTURES.includes(architecture));
  });
}
