/**
 * GET /metrics on port 0 with real HTTP: the Prometheus page counts what the server did, its
 * names and types match docs/metrics.md, promtool accepts it, and every server has its own registry.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { createServer } from '../../src/server/server.js';
import { TextClassifier } from '../../src/tasks/text-classification/model.js';
import { compileEmbedded, REPO, tempDir } from '../fixtures/models.js';

let artifact: string;

before(async () => {
  const dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
  artifact = (await compileEmbedded(join(dir, 'sst2.kiln'))).artifactDir;
});

/** The value of one sample: `name{labels}` with exactly these labels (none: the bare name). */
function sample(page: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of page.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (JSON.stringify(Object.entries(found).sort()) === JSON.stringify(Object.entries(labels).sort()))
      return Number(match[3]);
  }
  return undefined;
}

/** Why the promtool test is skipped, or false when promtool runs here. */
const PROMTOOL_MISSING =
  spawnSync('promtool', ['--version'], { encoding: 'utf8' }).error === undefined
    ? false
    : 'promtool is not on PATH (Debian/Ubuntu: apt-get install prometheus); the naming rules are still checked by test/unit/metric-names.test.ts';

const predict = (url: string, body: object) =>
  fetch(`${url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

describe('GET /metrics', () => {
  test('before the model loads: 200 in the Prometheus text format, kiln_model_ready 0, process memory present', async () => {
    const server = createServer({ port: 0 });
    const url = await server.listen();
    try {
      const res = await fetch(`${url}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const page = await res.text();
      assert.equal(sample(page, 'kiln_model_ready'), 0);
      assert.equal(sample(page, 'kiln_queue_depth'), 0);
      assert.ok((sample(page, 'kiln_process_resident_memory_bytes') ?? 0) > 1e6, 'resident memory in bytes');
    } finally {
      await server.close();
    }
  });

  test('after traffic: requests by route and status, latency, batches, tokens and replica busy ratios add up', async () => {
    const server = createServer({ port: 0 });
    const url = await server.listen();
    try {
      const classifier = await TextClassifier.load(artifact, { replicas: 2 });
      server.model.set(classifier);
      const texts = Array.from({ length: 12 }, (_, i) => `a film worth seeing, number ${i}`);
      for (const text of texts.slice(0, 6)) assert.equal((await predict(url, { text })).status, 200);
      assert.equal((await predict(url, { texts: texts.slice(6) })).status, 200);
      assert.equal((await predict(url, { text: '' })).status, 400);
      assert.equal((await fetch(`${url}/nope/${Math.random()}`)).status, 404);

      const page = await (await fetch(`${url}/metrics`)).text();
      assert.equal(sample(page, 'kiln_model_ready'), 1);
      assert.equal(sample(page, 'kiln_http_requests_total', { method: 'POST', route: '/predict', status: '200' }), 7);
      assert.equal(sample(page, 'kiln_http_requests_total', { method: 'POST', route: '/predict', status: '400' }), 1);
      assert.equal(
        sample(page, 'kiln_http_requests_total', { method: 'GET', route: 'unmatched', status: '404' }),
        1,
        'unknown paths share one label',
      );
      assert.equal(sample(page, 'kiln_http_request_duration_seconds_count', { method: 'POST', route: '/predict' }), 8);
      assert.ok(
        (sample(page, 'kiln_http_request_duration_seconds_sum', { method: 'POST', route: '/predict' }) ?? 0) > 0,
      );
      assert.equal(sample(page, 'kiln_http_requests_in_flight'), 1, 'the scrape itself');

      const stats = classifier.stats();
      assert.equal(sample(page, 'kiln_batch_size_count'), stats.batches);
      assert.equal(sample(page, 'kiln_batch_size_sum'), 12, 'every text in exactly one batch');
      assert.equal(sample(page, 'kiln_batch_compute_seconds_count'), stats.batches);
      assert.equal(sample(page, 'kiln_queue_wait_seconds_count'), stats.batches);
      assert.equal(sample(page, 'kiln_batch_fill_ratio_count'), stats.batches);
      assert.equal(sample(page, 'kiln_batch_padded_length_tokens_count'), stats.batches);
      const tokens = texts.reduce((n, t) => n + classifier.tokenCount(t), 0);
      assert.equal(sample(page, 'kiln_tokens_total'), tokens);
      assert.equal(sample(page, 'kiln_tokens_total'), stats.realTokens);
      assert.equal(sample(page, 'kiln_padded_tokens_total'), stats.paddedTokens);
      assert.equal(sample(page, 'kiln_queue_depth'), 0);
      assert.equal(sample(page, 'kiln_batches_in_flight'), 0);
      assert.equal(sample(page, 'kiln_queue_rejections_total'), 0);
      for (const replica of ['0', '1']) {
        const ratio = sample(page, 'kiln_replica_busy_ratio', { replica });
        assert.ok(ratio !== undefined && ratio >= 0 && ratio <= 1, `replica ${replica} busy ratio ${ratio}`);
      }
      assert.ok(
        (sample(page, 'kiln_replica_busy_ratio', { replica: '0' }) ?? 0) +
          (sample(page, 'kiln_replica_busy_ratio', { replica: '1' }) ?? 0) >
          0,
        'some replica did work',
      );
    } finally {
      await server.close();
    }
  });

  test("the default layout's wide replica is labelled `wide`, as in kiln top; it answered the lone request", {
    timeout: 60_000,
    skip: availableParallelism() < 2 ? 'one core: the default layout has no wide replica' : false,
  }, async () => {
    const server = createServer({ port: 0 });
    const url = await server.listen();
    try {
      server.model.set(await TextClassifier.load(artifact));
      assert.equal((await predict(url, { text: 'a lone request finds every replica idle' })).status, 200);
      const page = await (await fetch(`${url}/metrics`)).text();
      const replicas = [...page.matchAll(/^kiln_replica_busy_ratio\{replica="([^"]+)"\}/gm)].map((m) => m[1]);
      assert.deepEqual(replicas, [...Array.from({ length: replicas.length - 1 }, (_, i) => String(i)), 'wide']);
      assert.ok(
        (sample(page, 'kiln_replica_busy_ratio', { replica: 'wide' }) ?? 0) > 0,
        'the wide replica did the work',
      );
    } finally {
      await server.close();
    }
  });

  test('every metric family on the page is in docs/metrics.md with its type, and every name there is on the page', async () => {
    const server = createServer({ port: 0 });
    const url = await server.listen();
    try {
      server.model.set(await TextClassifier.load(artifact, { replicas: 1 }));
      assert.equal((await predict(url, { text: 'one batch so the histograms have samples' })).status, 200);
      const page = await (await fetch(`${url}/metrics`)).text();
      const scraped = new Map([...page.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
      const table = readFileSync(join(REPO, 'docs', 'metrics.md'), 'utf8');
      const rows = [...table.matchAll(/^\| `(kiln_\w+)` \| (\w+) \|.*\|(.*)\|$/gm)].map((m) => ({
        name: m[1]!,
        type: m[2]!,
        linuxOnly: m[3]!.includes('(Linux)'),
      }));
      const documented = new Map(rows.map((r) => [r.name, r.type]));
      for (const [name, type] of scraped)
        assert.equal(documented.get(name), type, `${name} (${type}) in docs/metrics.md`);
      for (const row of rows)
        if (!row.linuxOnly || process.platform === 'linux') assert.ok(scraped.has(row.name), `${row.name} on the page`);
    } finally {
      await server.close();
    }
  });

  test('promtool check metrics accepts the page (skipped when promtool is not on PATH)', {
    skip: PROMTOOL_MISSING,
  }, async () => {
    const server = createServer({ port: 0 });
    const url = await server.listen();
    try {
      server.model.set(await TextClassifier.load(artifact, { replicas: 2 }));
      assert.equal((await predict(url, { texts: ['a film worth seeing', 'a dull one'] })).status, 200);
      assert.equal((await predict(url, { text: '' })).status, 400);
      const page = await (await fetch(`${url}/metrics`)).text();
      const check = spawnSync('promtool', ['check', 'metrics'], { input: page, encoding: 'utf8', timeout: 30_000 });
      assert.equal(check.status, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`);
    } finally {
      await server.close();
    }
  });

  test('each server has its own registry: requests to one do not show on the other', async () => {
    const a = createServer({ port: 0 });
    const b = createServer({ port: 0 });
    const [urlA, urlB] = [await a.listen(), await b.listen()];
    try {
      for (let i = 0; i < 3; i += 1) assert.equal((await fetch(`${urlA}/ping`)).status, 503);
      const pageA = await (await fetch(`${urlA}/metrics`)).text();
      const pageB = await (await fetch(`${urlB}/metrics`)).text();
      assert.equal(sample(pageA, 'kiln_http_requests_total', { method: 'GET', route: '/ping', status: '503' }), 3);
      assert.equal(
        sample(pageB, 'kiln_http_requests_total', { method: 'GET', route: '/ping', status: '503' }),
        undefined,
      );
    } finally {
      await a.close();
      await b.close();
    }
  });
});
