/**
 * SageMaker's container contract on port 0 with real HTTP: GET /ping and POST /invocations with
 * JSON and with JSON Lines, as Batch Transform sends a file split by line.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TextClassifier } from '../../src/tasks/text-classification/model.js';
import { compileEmbedded, servedWithReference, tempDir } from '../fixtures/models.js';

let artifact: string;

before(async () => {
  const dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
  artifact = (await compileEmbedded(join(dir, 'sst2.kiln'))).artifactDir;
});

const invoke = (url: string, body: string, contentType = 'application/json') =>
  fetch(`${url}/invocations`, { method: 'POST', headers: { 'content-type': contentType }, body });

describe('SageMaker /ping and /invocations with the embedded model', () => {
  let url: string;
  let reference: TextClassifier;
  const answer = async (texts: string[]) =>
    (await reference.classify(texts)).map((p) => ({ label: p.label, score: p.score }));

  let close: () => Promise<void>;

  before(async () => {
    ({ url, reference, close } = await servedWithReference(artifact));
  });
  after(() => close());

  test('GET /ping → 200 once loaded', async () => {
    assert.equal((await fetch(`${url}/ping`)).status, 200);
  });

  test('application/json {"inputs": "…"} → {"label","score"}, as POST /predict answers {"text"}', async () => {
    const res = await invoke(url, JSON.stringify({ inputs: 'I absolutely loved this movie, it was fantastic!' }));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await res.json(), (await answer(['I absolutely loved this movie, it was fantastic!']))[0]);
  });

  test('application/json {"inputs": ["…", …]} → {"predictions"} in order; parameters.return_all_scores adds every label', async () => {
    const texts = ['a charming and moving film', 'awful, boring and far too long'];
    assert.deepEqual(await (await invoke(url, JSON.stringify({ inputs: texts }))).json(), {
      predictions: await answer(texts),
    });
    const all = (await (
      await invoke(url, JSON.stringify({ inputs: texts, parameters: { return_all_scores: true } }))
    ).json()) as {
      predictions: Array<{ label: string; scores: Array<{ label: string; score: number }> }>;
    };
    assert.deepEqual(
      all.predictions.map((p) => p.scores.map((s) => s.label)),
      [
        ['NEGATIVE', 'POSITIVE'],
        ['NEGATIVE', 'POSITIVE'],
      ],
    );
    for (const p of all.predictions) assert.ok(Math.abs(p.scores[0]!.score + p.scores[1]!.score - 1) < 1e-9);
  });

  test('application/jsonlines: one answer per line, in order, as application/jsonlines; objects, bare strings and blank lines', async () => {
    const texts = Array.from({ length: 40 }, (_, i) =>
      i % 2 === 0 ? `a wonderful film number ${i}` : `a dreadful film number ${i}`,
    );
    const body = `${texts.map((t, i) => (i % 3 === 0 ? JSON.stringify(t) : JSON.stringify({ inputs: t }))).join('\n')}\n\n`;
    const res = await invoke(url, body, 'application/jsonlines');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/jsonlines/);
    const text = await res.text();
    assert.ok(text.endsWith('\n'));
    const lines = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as unknown);
    assert.deepEqual(lines, await answer(texts));
  });

  test('a JSON Lines line may carry a list and parameters: that line answers {"predictions"}', async () => {
    const body = `${JSON.stringify({ inputs: ['good', 'bad'] })}\n${JSON.stringify({ inputs: 'fine', parameters: { return_all_scores: true } })}`;
    const lines = (await (await invoke(url, body, 'application/jsonlines')).text())
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 2);
    assert.deepEqual(lines[0], { predictions: await answer(['good', 'bad']) });
    assert.deepEqual(Object.keys(lines[1]!), ['label', 'score', 'scores']);
  });

  const badRequests: Array<
    [name: string, body: string, contentType: string, status: number, code: string, message: RegExp]
  > = [
    ['no "inputs"', '{"text": "a"}', 'application/json', 400, 'KILN_ERR_HTTP_INVOCATIONS_BODY', /unknown field "text"/],
    ['an empty object', '{}', 'application/json', 400, 'KILN_ERR_HTTP_INVOCATIONS_BODY', /has no "inputs"/],
    [
      'a number for inputs',
      '{"inputs": 5}',
      'application/json',
      400,
      'KILN_ERR_HTTP_INVOCATIONS_BODY',
      /neither a string nor a list/,
    ],
    [
      'a number in the inputs list',
      '{"inputs": ["a", 3]}',
      'application/json',
      400,
      'KILN_ERR_HTTP_INVOCATIONS_BODY',
      /"inputs\[1\]" is not a string/,
    ],
    [
      'an unknown parameter',
      '{"inputs": "a", "parameters": {"top_k": 2}}',
      'application/json',
      400,
      'KILN_ERR_HTTP_INVOCATIONS_BODY',
      /unknown field "top_k"/,
    ],
    [
      'a bare JSON string',
      '"just text"',
      'application/json',
      400,
      'KILN_ERR_HTTP_INVOCATIONS_BODY',
      /not a JSON object/,
    ],
    ['broken JSON', '{"inputs": ', 'application/json', 400, 'KILN_ERR_HTTP_INVOCATIONS_BODY', /not valid JSON/],
    [
      'a JSON Lines line that does not parse',
      '{"inputs": "a"}\n{"inputs": \n',
      'application/jsonlines',
      400,
      'KILN_ERR_HTTP_BAD_JSON_LINE',
      /^line 2 of the application\/jsonlines body does not parse/,
    ],
    [
      'a JSON Lines line without inputs',
      '"ok"\n\n{"input": "a"}',
      'application/jsonlines',
      400,
      'KILN_ERR_HTTP_BAD_JSON_LINE',
      /^line 3 .* unknown field "input"/,
    ],
    [
      'a JSON Lines line that is a number',
      '42',
      'application/jsonlines',
      400,
      'KILN_ERR_HTTP_BAD_JSON_LINE',
      /^line 1 .* not a JSON object or string/,
    ],
    [
      'an empty JSON Lines body',
      '\n\n',
      'application/jsonlines',
      400,
      'KILN_ERR_HTTP_INVOCATIONS_BODY',
      /has no lines/,
    ],
    [
      'an empty text on a line',
      '"fine"\n" "',
      'application/jsonlines',
      400,
      'KILN_ERR_INPUT_EMPTY_TEXT',
      /^line 2 is empty/,
    ],
    [
      'more texts than one request may hold',
      Array.from({ length: 1025 }, () => '"x"').join('\n'),
      'application/jsonlines',
      413,
      'KILN_ERR_HTTP_TOO_MANY_TEXTS',
      /1025 inputs/,
    ],
    ['text/csv', 'a,b\n', 'text/csv', 415, 'KILN_ERR_HTTP_MEDIA_TYPE', /text\/csv/],
  ];
  for (const [name, body, contentType, status, code, message] of badRequests) {
    test(`POST /invocations with ${name} → ${status} ${code}`, async () => {
      const res = await invoke(url, body, contentType);
      assert.equal(res.status, status);
      const json = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(json.error.code, code);
      assert.match(json.error.message, message);
    });
  }

  test('JSON Lines is accepted by /invocations only: /predict still answers 415 to it', async () => {
    const res = await fetch(`${url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/jsonlines' },
      body: '"a"\n',
    });
    assert.equal(res.status, 415);
  });
});
