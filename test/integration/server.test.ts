/** The HTTP server on port 0 with real requests: routes, validation, errors, API key. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createServer, type KilnServer } from '../../src/server/server.js';
import { TextClassifier } from '../../src/tasks/text-classification/model.js';
import { compileEmbedded, tempDir } from '../fixtures/models.js';

let artifact: string;

before(async () => {
  const dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
  artifact = (await compileEmbedded(join(dir, 'sst2.kiln'))).artifactDir;
});

async function started(options: Parameters<typeof createServer>[0] = {}): Promise<{ server: KilnServer; url: string }> {
  const server = createServer({ port: 0, ...options });
  const url = await server.listen();
  return { server, url };
}

const post = (url: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
  fetch(url, { method: 'POST', body, headers });

describe('kiln server before the model is loaded', () => {
  test('GET /ping and POST /predict answer 503 KILN_ERR_HTTP_NOT_READY; the server binds 127.0.0.1', async () => {
    const { server, url } = await started();
    try {
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const ping = await fetch(`${url}/ping`);
      assert.equal(ping.status, 503);
      assert.equal(((await ping.json()) as { error: { code: string } }).error.code, 'KILN_ERR_HTTP_NOT_READY');
      const predict = await post(`${url}/predict`, '{"text":"hi"}');
      assert.equal(predict.status, 503);
    } finally {
      await server.close();
    }
  });
});

describe('kiln server with the embedded model', () => {
  let server: KilnServer;
  let url: string;
  let reference: TextClassifier;

  before(async () => {
    ({ server, url } = await started());
    server.model.set(await TextClassifier.load(artifact));
    reference = await TextClassifier.load(artifact);
  });
  after(async () => {
    await server.close();
    await reference.close();
  });

  test('GET /ping → 200 once loaded', async () => {
    const res = await fetch(`${url}/ping`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok', model: 'sst2-distilbert-tiny' });
  });

  test('POST /predict {"text"} → {"label","score"} equal to the classifier\'s own answer', async () => {
    const res = await post(
      `${url}/predict`,
      JSON.stringify({ text: 'I absolutely loved this movie, it was fantastic!' }),
    );
    assert.equal(res.status, 200);
    const body = (await res.json()) as { label: string; score: number };
    const [expected] = await reference.classify(['I absolutely loved this movie, it was fantastic!']);
    assert.deepEqual(body, { label: expected!.label, score: expected!.score });
    assert.equal(body.label, 'POSITIVE');
  });

  test('POST /predict {"texts"} → predictions in request order', async () => {
    const texts = ['awful, boring and far too long', 'a charming and moving film', 'the worst'];
    const res = await post(`${url}/predict`, JSON.stringify({ texts }));
    const body = (await res.json()) as { predictions: Array<{ label: string; score: number }> };
    const expected = await reference.classify(texts);
    assert.deepEqual(
      body.predictions,
      expected.map((p) => ({ label: p.label, score: p.score })),
    );
    assert.deepEqual(
      body.predictions.map((p) => p.label),
      ['NEGATIVE', 'POSITIVE', 'NEGATIVE'],
    );
  });

  test('POST /predict "return_all_scores": true adds every label with its softmax score, in label order', async () => {
    const texts = ['a charming and moving film', 'awful, boring and far too long'];
    const res = await post(`${url}/predict`, JSON.stringify({ texts, return_all_scores: true }));
    const body = (await res.json()) as {
      predictions: Array<{ label: string; score: number; scores: Array<{ label: string; score: number }> }>;
    };
    const expected = await reference.classify(texts);
    body.predictions.forEach((p, i) => {
      const logits = expected[i]!.logits;
      const sum = logits.reduce((n, l) => n + Math.exp(l), 0);
      assert.deepEqual(
        p.scores.map((s) => s.label),
        ['NEGATIVE', 'POSITIVE'],
      );
      p.scores.forEach((s, k) => {
        assert.ok(Math.abs(s.score - Math.exp(logits[k]!) / sum) < 1e-12);
      });
      assert.equal(p.label, expected[i]!.label);
      assert.equal(
        p.scores.find((s) => s.label === p.label)!.score,
        p.score,
        'the top score is the one "score" reports',
      );
    });
    const single = (await (
      await post(`${url}/predict`, JSON.stringify({ text: 'fine', return_all_scores: true }))
    ).json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(single), ['label', 'score', 'scores']);
    const without = (await (
      await post(`${url}/predict`, JSON.stringify({ text: 'fine', return_all_scores: false }))
    ).json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(without), ['label', 'score']);
  });

  const badRequests: Array<
    [name: string, body: string, status: number, code: string, headers?: Record<string, string>]
  > = [
    ['broken JSON', '{"text": ', 400, 'KILN_ERR_HTTP_BAD_JSON'],
    ['an empty body', '', 400, 'KILN_ERR_HTTP_BAD_JSON'],
    ['a number for text', '{"text": 5}', 400, 'KILN_ERR_HTTP_INVALID_BODY'],
    ['a number inside texts', '{"texts": ["a", 3]}', 400, 'KILN_ERR_HTTP_INVALID_BODY'],
    ['texts that is not a list', '{"texts": "a"}', 400, 'KILN_ERR_HTTP_INVALID_BODY'],
    ['neither text nor texts', '{}', 400, 'KILN_ERR_HTTP_INVALID_BODY'],
    ['both text and texts', '{"text": "a", "texts": ["b"]}', 400, 'KILN_ERR_HTTP_INVALID_BODY'],
    ['an unknown field', '{"text": "a", "colour": "red"}', 400, 'KILN_ERR_HTTP_INVALID_BODY'],
    ['a string for return_all_scores', '{"text": "a", "return_all_scores": "yes"}', 400, 'KILN_ERR_HTTP_INVALID_BODY'],
    ['a JSON array body', '["a"]', 400, 'KILN_ERR_HTTP_INVALID_BODY'],
    ['an empty texts list', '{"texts": []}', 400, 'KILN_ERR_HTTP_INVALID_BODY'],
    ['an empty text', '{"text": ""}', 400, 'KILN_ERR_INPUT_EMPTY_TEXT'],
    ['a whitespace text in a list', '{"texts": ["ok", " \\n "]}', 400, 'KILN_ERR_INPUT_EMPTY_TEXT'],
    [
      'too many texts',
      JSON.stringify({ texts: Array.from({ length: 1025 }, () => 'x') }),
      413,
      'KILN_ERR_HTTP_TOO_MANY_TEXTS',
    ],
    ['a plain-text body', 'hello', 415, 'KILN_ERR_HTTP_MEDIA_TYPE', { 'content-type': 'text/plain' }],
  ];
  for (const [name, body, status, code, headers] of badRequests) {
    test(`POST /predict with ${name} → ${status} ${code}`, async () => {
      const res = await post(`${url}/predict`, body, headers);
      assert.equal(res.status, status);
      const json = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(json.error.code, code);
      assert.ok(json.error.message.length > 20);
    });
  }

  test('a body over the limit → 413 KILN_ERR_HTTP_BODY_TOO_LARGE, and the server keeps serving', async () => {
    const res = await post(`${url}/predict`, JSON.stringify({ text: 'x'.repeat(2 * 1024 * 1024) }));
    assert.equal(res.status, 413);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'KILN_ERR_HTTP_BODY_TOO_LARGE');
    assert.equal((await post(`${url}/predict`, '{"text":"still here"}')).status, 200);
  });

  test('unknown routes and methods → 404 KILN_ERR_HTTP_NOT_FOUND', async () => {
    for (const [method, path] of [
      ['GET', '/nope'],
      ['GET', '/predict'],
      ['DELETE', '/ping'],
    ] as const) {
      const res = await fetch(`${url}${path}`, { method });
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'KILN_ERR_HTTP_NOT_FOUND');
    }
  });

  test('a burst of concurrent requests all get their own correct answer', async () => {
    const texts = Array.from({ length: 40 }, (_, i) =>
      i % 2 === 0 ? `a wonderful film number ${i}` : `a dreadful film number ${i}`,
    );
    const answers = await Promise.all(
      texts.map((text) =>
        post(`${url}/predict`, JSON.stringify({ text })).then(
          (r) => r.json() as Promise<{ label: string; score: number }>,
        ),
      ),
    );
    const expected = await reference.classify(texts);
    assert.deepEqual(
      answers,
      expected.map((p) => ({ label: p.label, score: p.score })),
    );
  });
});

describe('kiln server with an API key', () => {
  test('every route but the health checks needs the key, as a bearer token or x-api-key', async () => {
    const { server, url } = await started({ apiKey: 's3cret' });
    try {
      server.model.set(await TextClassifier.load(artifact));
      assert.equal((await fetch(`${url}/ping`)).status, 200);
      const denied = await post(`${url}/predict`, '{"text":"hi"}');
      assert.equal(denied.status, 401);
      assert.equal(((await denied.json()) as { error: { code: string } }).error.code, 'KILN_ERR_HTTP_UNAUTHORIZED');
      assert.equal(
        (
          await post(`${url}/predict`, '{"text":"hi"}', {
            'content-type': 'application/json',
            authorization: 'Bearer wrong',
          })
        ).status,
        401,
      );
      assert.equal(
        (
          await post(`${url}/predict`, '{"text":"hi"}', {
            'content-type': 'application/json',
            authorization: 'Bearer s3cret',
          })
        ).status,
        200,
      );
      assert.equal(
        (await post(`${url}/predict`, '{"text":"hi"}', { 'content-type': 'application/json', 'x-api-key': 's3cret' }))
          .status,
        200,
      );
      assert.equal((await fetch(`${url}/nope`)).status, 401, 'unknown routes are guarded too');
      // Health checks stay open (probes carry no key); every other route, old or new, is guarded.
      for (const path of ['/v2/health/live', '/v2/health/ready'])
        assert.equal((await fetch(`${url}${path}`)).status, 200, path);
      const json = { 'content-type': 'application/json' };
      const guarded: Array<[string, string, string?]> = [
        ['GET', '/stats'],
        ['GET', '/metrics'],
        ['POST', '/invocations', '{"inputs":"hi"}'],
        ['GET', '/v2'],
        ['GET', '/v2/models/sst2-distilbert-tiny'],
        ['GET', '/v2/models/sst2-distilbert-tiny/ready'],
        [
          'POST',
          '/v2/models/sst2-distilbert-tiny/infer',
          '{"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":["hi"]}]}',
        ],
      ];
      for (const [method, path, body] of guarded) {
        const denied = await fetch(`${url}${path}`, { method, headers: json, body });
        assert.equal(denied.status, 401, `${method} ${path} without the key`);
        assert.equal(denied.headers.get('kiln-error-code'), 'KILN_ERR_HTTP_UNAUTHORIZED');
        if (path.startsWith('/v2'))
          assert.match(((await denied.json()) as { error: string }).error, /API key/, 'KServe error shape');
        const allowed = await fetch(`${url}${path}`, { method, headers: { ...json, 'x-api-key': 's3cret' }, body });
        assert.equal(allowed.status, 200, `${method} ${path} with the key`);
      }
    } finally {
      await server.close();
    }
  });
});
