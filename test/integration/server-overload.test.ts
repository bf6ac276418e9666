/**
 * The server under pressure, on port 0 with real HTTP: a full queue answers 429 with Retry-After,
 * long texts 413, a missed deadline 504, and a drain answers what it accepted while refusing new
 * work. A gated replica holds batches until the test opens the gate, so every outcome is decided
 * by the order of events, not by timing.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import type { ModelOptions } from '../../src/runtime/task-model.js';
import { createServer, type ServerOptions } from '../../src/server/server.js';
import { TextClassifier } from '../../src/tasks/text-classification/model.js';
import { type GatedReplicas, gatedReplicas as gatedReplicasOf, until, within } from '../fixtures/gated-replicas.js';
import { compileEmbedded, tempDir } from '../fixtures/models.js';

let artifact: string;

before(async () => {
  const dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
  artifact = (await compileEmbedded(join(dir, 'sst2.kiln'))).artifactDir;
});

/** Replicas of the compiled model whose batches wait until the test opens the gate. */
const gatedReplicas = (): GatedReplicas => gatedReplicasOf(join(artifact, 'model.onnx'));

async function gatedServer(serverOptions: ServerOptions, classifierOptions: ModelOptions = {}) {
  const gated = gatedReplicas();
  const server = createServer({ port: 0, ...serverOptions });
  const url = await server.listen();
  // One batch at a time on the replica (no batch sent ahead), so the queue fills exactly as each test counts.
  server.model.set(
    await TextClassifier.load(artifact, {
      replicas: 1,
      pipeline: 1,
      replicaFactory: gated.factory,
      ...classifierOptions,
    }),
  );
  return { server, url, ...gated };
}

const predict = (url: string, body: object) =>
  fetch(`${url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

async function errorCode(res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code;
}

/** Resolves when `count` of the responses have arrived (see `until` for its deadline). */
async function whenSettled(responses: Array<Promise<Response>>, count: number): Promise<void> {
  let settled = 0;
  for (const r of responses) void r.then(() => (settled += 1));
  await until(() => settled >= count, `${count} responses`);
}

describe('overload', () => {
  test('a burst against a full queue (max-queue 1): the excess gets 429 KILN_ERR_QUEUE_FULL with Retry-After, the rest 200, and the server keeps serving', async () => {
    const { server, url, open, running } = await gatedServer({}, { maxQueue: 1 });
    try {
      // One request on the replica (held at the gate), then a burst: one fits the queue, the rest do not.
      const first = predict(url, { text: 'a charming and moving film' });
      await within(running, 'the first batch');
      const burst = Array.from({ length: 8 }, (_, i) =>
        predict(url, { text: `awful, boring and far too long, part ${i}` }),
      );
      await whenSettled(burst, 7);
      open();
      const responses = await Promise.all([first, ...burst]);
      const refused = responses.filter((r) => r.status === 429);
      const answered = responses.filter((r) => r.status === 200);
      assert.equal(refused.length, 7);
      assert.equal(answered.length, 2);
      for (const res of refused) {
        assert.equal(res.headers.get('retry-after'), '1');
        assert.equal(res.headers.get('kiln-error-code'), 'KILN_ERR_QUEUE_FULL');
        const body = (await res.json()) as { error: { code: string; message: string } };
        assert.equal(body.error.code, 'KILN_ERR_QUEUE_FULL');
        assert.match(body.error.message, /--max-queue/);
      }
      assert.equal(
        ((await responses[0]!.json()) as { label: string }).label,
        'POSITIVE',
        'the request on the replica got its own answer',
      );
      const after = await predict(url, { text: 'still serving' });
      assert.equal(after.status, 200);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      assert.match(metrics, /^kiln_queue_rejections_total 7$/m);
      assert.match(metrics, /^kiln_http_requests_total\{method="POST",route="\/predict",status="429"\} 7$/m);
    } finally {
      open();
      await server.close();
    }
  });

  test('with the default pipeline of 2, a busy replica holds one batch sent ahead; then the queue fills and the rest get 429; all accepted are answered', async () => {
    const { server, url, open, running } = await gatedServer({}, { maxQueue: 1, pipeline: 2 });
    try {
      const stats = () => server.model.all()[0]!.stats();
      const accepted = [predict(url, { text: 'a charming and moving film' })];
      await within(running, 'the first batch');
      accepted.push(predict(url, { text: 'sent ahead to the busy replica' }));
      await until(() => stats().inFlight === 2);
      accepted.push(predict(url, { text: 'waits in the queue' }));
      await until(() => stats().queueDepth === 1);
      const refused = await Promise.all(
        Array.from({ length: 5 }, (_, i) => predict(url, { text: `one too many, ${i}` })),
      );
      assert.deepEqual(
        refused.map((r) => r.status),
        [429, 429, 429, 429, 429],
      );
      open();
      assert.deepEqual(
        (await Promise.all(accepted)).map((r) => r.status),
        [200, 200, 200],
      );
      assert.equal(stats().completed, 3);
      assert.equal(stats().rejected, 5);
    } finally {
      open();
      await server.close();
    }
  });

  test('fair batching: a one-text request sent while a 500-text request is queued is answered before most of the long one', async () => {
    // Two replicas, batches sent ahead: the default layout's shape, gated so order decides.
    const { server, url, open, running } = await gatedServer({}, { replicas: 2, pipeline: 2, maxBatch: 8 });
    try {
      const stats = () => server.model.all()[0]!.stats();
      const long = predict(url, { texts: Array.from({ length: 500 }, (_, i) => `passage ${i} of a long request`) });
      await within(running, 'the first batch');
      await until(() => stats().queueDepth > 0 && stats().inFlight === 4, 'four batches on the replicas');
      const short = predict(url, { text: 'a charming and moving film' });
      await until(() => stats().queueDepth === 500 - 4 * 8 + 1, 'the short request queued');
      open();
      const res = await short;
      const completedThen = stats().completed;
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { label: string }).label, 'POSITIVE');
      // FIFO answers it after all 500; fair queuing puts it in the first batch formed after it (on
      // a replica behind the batch it holds; the other replica may answer a few batches meanwhile).
      assert.ok(completedThen < 200, `${completedThen} texts were answered before or with it`);
      const longRes = await long;
      assert.equal(longRes.status, 200);
      assert.equal(((await longRes.json()) as { predictions: unknown[] }).predictions.length, 500);
    } finally {
      open();
      await server.close();
    }
  });

  test('a model name that is not valid percent-encoding (/v2/models/%E0%A4%A/infer) gets a 4xx, and the server keeps serving', async () => {
    const { server, url, open } = await gatedServer({}, { maxQueue: 1 });
    open();
    try {
      const bad = await fetch(`${url}/v2/models/%E0%A4%A/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      assert.ok(bad.status >= 400 && bad.status < 500, `status ${bad.status}`);
      const after = await predict(url, { text: 'still serving' });
      assert.equal(after.status, 200);
    } finally {
      await server.close();
    }
  });

  test('a refusal is answered before fastify sees the request: its onRequest hooks never run for it', async () => {
    const gated = gatedReplicas();
    const server = createServer({ port: 0 });
    let seenByFastify = 0;
    server.app.addHook('onRequest', async (request) => {
      if (request.url === '/predict') seenByFastify += 1;
    });
    const url = await server.listen();
    server.model.set(
      await TextClassifier.load(artifact, { replicas: 1, pipeline: 1, maxQueue: 1, replicaFactory: gated.factory }),
    );
    try {
      const first = predict(url, { text: 'on the replica' });
      await within(gated.running, 'the first batch');
      const queued = predict(url, { text: 'in the queue' });
      await until(() => server.model.all()[0]!.stats().queueDepth === 1);
      assert.equal(seenByFastify, 2);
      const refused = await predict(url, { text: 'refused' });
      assert.equal(refused.status, 429);
      assert.equal(seenByFastify, 2, 'the refused request never reached fastify');
      // A request that reaches fastify without a socket (inject) is judged by the same rule in a
      // hook, also before its body is read: an invalid body gets 429, not 400.
      const injected = await server.app.inject({
        method: 'POST',
        url: '/predict',
        headers: { 'content-type': 'application/json' },
        payload: '{"text": 5, "unknown": true',
      });
      assert.equal(injected.statusCode, 429);
      assert.equal(injected.headers['kiln-error-code'], 'KILN_ERR_QUEUE_FULL');
      gated.open();
      assert.deepEqual(
        (await Promise.all([first, queued])).map((r) => r.status),
        [200, 200],
      );
    } finally {
      gated.open();
      await server.close();
    }
  });

  test('a full queue refuses before reading the body: an invalid body gets 429, not 400, on /predict and KServe (in its {"error"} shape)', async () => {
    const { server, url, open, running } = await gatedServer({}, { maxQueue: 1 });
    try {
      const first = predict(url, { text: 'a charming and moving film' });
      await within(running, 'the first batch');
      const queued = predict(url, { text: 'waits in the queue' });
      // The queue holds one request once the scheduler has it: wait for that, not for time.
      await until(() => server.model.all()[0]!.stats().queueDepth === 1);
      const invalid = await fetch(`${url}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"text": 5, "unknown": true',
      });
      assert.equal(invalid.status, 429, 'refused before the body was parsed or validated');
      assert.equal(await errorCode(invalid), 'KILN_ERR_QUEUE_FULL');
      const kserve = await fetch(`${url}/v2/models/sst2-distilbert-tiny/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: 'not json',
      });
      assert.equal(kserve.status, 429);
      assert.deepEqual(Object.keys((await kserve.json()) as object), ['error']);
      // A GET is never refused early, and the refusals are counted as the scheduler's.
      assert.equal((await fetch(`${url}/stats`)).status, 200);
      assert.equal(server.model.all()[0]!.stats().rejected, 2);
      open();
      assert.deepEqual(
        (await Promise.all([first, queued])).map((r) => r.status),
        [200, 200],
      );
    } finally {
      open();
      await server.close();
    }
  });

  test('with an API key, a full queue still answers 401 to a request without the key (it learns nothing of the load), 429 to one with it, and counts both in /metrics', async () => {
    const key = 'overload-test-key';
    const { server, url, open, running } = await gatedServer({ apiKey: key }, { maxQueue: 1 });
    const withKey = { 'content-type': 'application/json', authorization: `Bearer ${key}` };
    try {
      const first = fetch(`${url}/predict`, {
        method: 'POST',
        headers: withKey,
        body: JSON.stringify({ text: 'a charming and moving film' }),
      });
      await within(running, 'the first batch');
      const queued = fetch(`${url}/predict`, {
        method: 'POST',
        headers: withKey,
        body: JSON.stringify({ text: 'waits in the queue' }),
      });
      await until(() => server.model.all()[0]!.stats().queueDepth === 1);
      const anonymous = await predict(url, { text: 'no key' });
      assert.equal(anonymous.status, 401);
      assert.equal(await errorCode(anonymous), 'KILN_ERR_HTTP_UNAUTHORIZED');
      const wrongKey = await fetch(`${url}/v2/models/sst2-distilbert-tiny/infer`, {
        method: 'POST',
        headers: { 'x-api-key': 'not-the-key' },
        body: '{}',
      });
      assert.equal(wrongKey.status, 401);
      const refused = await fetch(`${url}/v2/models/sst2-distilbert-tiny/infer`, {
        method: 'POST',
        headers: { 'x-api-key': key },
        body: '{}',
      });
      assert.equal(refused.status, 429);
      assert.equal(refused.headers.get('retry-after'), '1');
      assert.equal(refused.headers.get('kiln-error-code'), 'KILN_ERR_QUEUE_FULL');
      assert.match(refused.headers.get('content-type') ?? '', /^application\/json/);
      assert.match(((await refused.json()) as { error: string }).error, /--max-queue/);
      assert.equal(server.model.all()[0]!.stats().rejected, 1, 'only the request with the key was refused for load');
      const metrics = await (await fetch(`${url}/metrics`, { headers: withKey })).text();
      assert.match(metrics, /^kiln_http_requests_total\{method="POST",route="\/predict",status="401"\} 1$/m);
      assert.match(
        metrics,
        /^kiln_http_requests_total\{method="POST",route="\/v2\/models\/:name\/infer",status="429"\} 1$/m,
      );
      open();
      assert.deepEqual(
        (await Promise.all([first, queued])).map((r) => r.status),
        [200, 200],
      );
    } finally {
      open();
      await server.close();
    }
  });

  test('a text over --max-text-chars → 413 KILN_ERR_HTTP_TEXT_TOO_LONG on every classifying route; the default is 20,000', async () => {
    const server = createServer({ port: 0 });
    const url = await server.listen();
    try {
      server.model.set(await TextClassifier.load(artifact, { replicas: 1 }));
      const long = 'good '.repeat(4001);
      const requests: Array<[string, string, string]> = [
        ['/predict', 'application/json', JSON.stringify({ texts: ['fine', long] })],
        ['/invocations', 'application/json', JSON.stringify({ inputs: long })],
        ['/invocations', 'application/jsonlines', `"fine"\n${JSON.stringify(long)}\n`],
        [
          '/v2/models/sst2-distilbert-tiny/infer',
          'application/json',
          JSON.stringify({ inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: [long] }] }),
        ],
      ];
      for (const [path, type, body] of requests) {
        const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': type }, body });
        assert.equal(res.status, 413, path);
        assert.equal(res.headers.get('kiln-error-code'), 'KILN_ERR_HTTP_TEXT_TOO_LONG', path);
        const message = JSON.stringify(await res.json());
        assert.match(message, /20005 characters; at most 20000/, path);
      }
      assert.equal((await predict(url, { text: 'good '.repeat(3999) })).status, 200, 'a text at the limit is accepted');
    } finally {
      await server.close();
    }
  });

  test('a request not answered within --timeout-ms → 504 KILN_ERR_HTTP_TIMEOUT; the server keeps serving', async () => {
    const { server, url, open } = await gatedServer({ timeoutMs: 50 });
    try {
      const res = await predict(url, { text: 'held at the gate' });
      assert.equal(res.status, 504);
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'KILN_ERR_HTTP_TIMEOUT');
      assert.match(body.error.message, /50 ms \(--timeout-ms\)/);
      open();
      assert.equal((await predict(url, { text: 'answered in time' })).status, 200);
    } finally {
      open();
      await server.close();
    }
  });
});

describe('drain', () => {
  test('drain(): health checks turn 503 at once, new requests get 503 KILN_ERR_HTTP_DRAINING, the request in flight is answered, then the server closes', async () => {
    const { server, url, open, running } = await gatedServer({ apiKey: 'k' }, { maxQueue: 16 });
    const auth = { authorization: 'Bearer k', 'content-type': 'application/json' };
    try {
      const inFlight = fetch(`${url}/predict`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ texts: ['a charming and moving film', 'the worst'] }),
      });
      await within(running, 'the first batch');
      let reported = -1;
      const drained = server.drain('SIGTERM', (n) => (reported = n));
      assert.equal(reported, 1, 'one request in flight when the drain starts');

      const ping = await fetch(`${url}/ping`);
      assert.equal(ping.status, 503);
      assert.equal(await errorCode(ping), 'KILN_ERR_HTTP_DRAINING');
      const ready = await fetch(`${url}/v2/health/ready`);
      assert.equal(ready.status, 503);
      assert.deepEqual(await ready.json(), { ready: false });
      assert.equal((await fetch(`${url}/v2/health/live`)).status, 200, 'the process is still alive');
      const refused = await fetch(`${url}/predict`, { method: 'POST', headers: auth, body: '{"text":"too late"}' });
      assert.equal(refused.status, 503);
      const body = (await refused.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'KILN_ERR_HTTP_DRAINING');
      assert.match(body.error.message, /shutting down \(SIGTERM\)/);
      const refusedV2 = await fetch(`${url}/v2/models/sst2-distilbert-tiny/infer`, {
        method: 'POST',
        headers: auth,
        body: '{"inputs":[]}',
      });
      assert.equal(refusedV2.status, 503);
      assert.match(((await refusedV2.json()) as { error: string }).error, /shutting down/);

      open();
      const answer = await inFlight;
      assert.equal(answer.status, 200);
      assert.deepEqual(
        ((await answer.json()) as { predictions: Array<{ label: string }> }).predictions.map((p) => p.label),
        ['POSITIVE', 'NEGATIVE'],
      );
      await drained;
      await assert.rejects(fetch(`${url}/ping`), 'the listener is closed after the drain');
    } finally {
      open();
      await server.close();
    }
  });
});
