/**
 * The runtime classes and request/answer types of the newer tasks, named from 'kiln' as a user's
 * code names them: `loadModel` on the tiny NER fixture narrows by `task` to a `TokenClassifier`
 * whose grouped entities are the float64 PyTorch reference's (test/fixtures/pytorch/tasks).
 * The switch below fails to compile if `LoadedModel` gains a class these names do not cover.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type {
  Answers,
  Entity,
  GroupEntity,
  LoadedModel,
  QuestionAnswerer,
  QuestionRequest,
  Ranked,
  TextRanker,
  TokenAnswer,
  TokenClassifier,
  TokenOptions,
  ZeroShotAnswer,
  ZeroShotClassifier,
  ZeroShotRequest,
} from 'kiln';
import { REPO, tempDir } from '../fixtures/models.js';

// Resolved through package.json "exports", as from a project that depends on kiln.
const kiln = await import('kiln');

const FIXTURES = join(REPO, 'test', 'fixtures', 'pytorch', 'tasks');

interface Expected {
  max_length: number;
  token_classification: { model: string; texts: Array<{ text: string; simple: GroupEntity[] }> };
}
const expected = JSON.parse(readFileSync(join(FIXTURES, 'expected.json'), 'utf8')) as Expected;

/** What each new task's method answers, reached through the exported class names only. */
async function answerOf(
  model: LoadedModel,
): Promise<TokenAnswer[] | Ranked[] | ZeroShotAnswer[] | Answers[] | 'older task'> {
  switch (model.task) {
    case 'token-classification': {
      const ner: TokenClassifier = model;
      const options: TokenOptions = { aggregationStrategy: 'simple' };
      return ner.recognize(
        expected.token_classification.texts.map((t) => t.text),
        undefined,
        options,
      );
    }
    case 'text-ranking': {
      const ranker: TextRanker = model;
      return ranker.rank('query', ['text'], (i) => `text ${i}`);
    }
    case 'zero-shot-classification': {
      const zeroShot: ZeroShotClassifier = model;
      const request: ZeroShotRequest = { text: 'text', labels: ['a', 'b'] };
      return zeroShot.classify([request]);
    }
    case 'question-answering': {
      const qa: QuestionAnswerer = model;
      const request: QuestionRequest = { question: 'who?', context: 'someone' };
      return qa.ask([request]);
    }
    case 'text-classification':
    case 'feature-extraction':
    case 'image-classification':
      return 'older task';
    default: {
      const unhandled: never = model;
      throw new Error(`a task this test does not name: ${(unhandled as LoadedModel).task}`);
    }
  }
}

let dir: string;
let model: LoadedModel;

before(async () => {
  dir = await tempDir('kiln-library-tasks-');
  const compiled = await kiln.compile({
    source: join(FIXTURES, expected.token_classification.model),
    out: join(dir, 'ner.kiln'),
    maxLength: expected.max_length,
    cache: false,
  });
  model = await kiln.loadModel({ model: compiled.artifactDir, replicas: 1 });
});

after(() => model?.close());

test('loadModel on a NER model gives a TokenClassifier (task token-classification) whose grouped entities are the PyTorch reference’s', {
  timeout: 60_000,
}, async () => {
  assert.equal(model.task, 'token-classification');
  const answers = await answerOf(model);
  assert.ok(Array.isArray(answers));
  const { texts } = expected.token_classification;
  assert.equal(answers.length, texts.length);
  (answers as TokenAnswer[]).forEach((answer, i) => {
    const want = texts[i]!.simple;
    assert.equal(answer.text, texts[i]!.text);
    const got: Entity[] = answer.entities;
    assert.deepEqual(
      got.map((e) => ('entity_group' in e ? [e.entity_group, e.word, e.start, e.end] : ['token', e.entity])),
      want.map((e) => [e.entity_group, e.word, e.start, e.end]),
      texts[i]!.text,
    );
    for (const [j, e] of got.entries())
      assert.ok(Math.abs(e.score - want[j]!.score) <= 1e-4, `${texts[i]!.text}, entity ${j}`);
  });
});
