/**
 * GET /dashboard: a self-contained page (checked over HTTP), the `?key=` it and /stats accept, and,
 * in headless Chromium (Debian's `chromium`, driven by playwright-core), charts that show the load
 * a client sends without the page loading anything from anywhere but the server.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { createServer, type KilnServer } from '../../src/server/server.js';
import { TextClassifier } from '../../src/tasks/text-classification/model.js';
import { compileEmbedded, tempDir } from '../fixtures/models.js';

const CHROMIUM = '/usr/bin/chromium';
const KEY = 's3cret-dashboard-key';

let artifact: string;

before(async () => {
  const dir = await tempDir();
  process.env.KILN_CACHE_DIR = join(dir, 'cache');
  artifact = (await compileEmbedded(join(dir, 'sst2.kiln'))).artifactDir;
});

async function started(
  options: { apiKey?: string; replicas?: number } = {},
): Promise<{ server: KilnServer; url: string }> {
  const server = createServer({ port: 0, apiKey: options.apiKey ?? null });
  try {
    const url = await server.listen();
    server.model.set(await TextClassifier.load(artifact, { replicas: options.replicas ?? 1 }));
    return { server, url };
  } catch (err) {
    await server.close();
    throw err;
  }
}

/** Keeps the server busy with `clients` concurrent requests until the returned function is called. */
function load(url: string, clients: number): () => Promise<number> {
  let running = true;
  let answered = 0;
  const loops = Array.from({ length: clients }, async (_, i) => {
    while (running) {
      const res = await fetch(`${url}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': KEY },
        body: JSON.stringify({ text: `a fine and moving film, take ${i}` }),
      });
      assert.equal(res.status, 200, await res.text());
      answered += 1;
    }
  });
  return async () => {
    running = false;
    await Promise.all(loops);
    return answered;
  };
}

describe('GET /dashboard over HTTP', () => {
  test('is one self-contained HTML page: no http(s) URL, no external script or stylesheet, a CSP that pins its inline code', async () => {
    const { server, url } = await started();
    try {
      const res = await fetch(`${url}/dashboard`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/html; charset=utf-8/);
      const html = await res.text();
      assert.match(html, /^<!doctype html>/);
      assert.doesNotMatch(html, /https?:\/\//i, 'no absolute URL anywhere in the page');
      assert.doesNotMatch(html, /<script[^>]*\ssrc\s*=/i, 'no external script');
      assert.doesNotMatch(html, /<link[^>]*stylesheet/i, 'no external stylesheet');
      assert.doesNotMatch(html, /<(img|iframe|object|embed)\b/i);
      for (const id of ['throughput', 'latency', 'queue', 'utilization'])
        assert.match(html, new RegExp(`id="chart-${id}"[^>]*data-points="0"`));

      // The browser runs the inline script and style only if the header's hashes are theirs.
      const csp = res.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /connect-src 'self'/);
      const digest = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
      const script = /<script>([\s\S]*)<\/script>/.exec(html)?.[1];
      const style = /<style>([\s\S]*)<\/style>/.exec(html)?.[1];
      assert.ok(script && style);
      assert.ok(csp.includes(`script-src ${digest(script)}`), 'the CSP allows the inline script');
      assert.ok(csp.includes(`style-src ${digest(style)}`), 'the CSP allows the inline style');
      assert.equal(res.headers.get('cache-control'), 'no-store');
    } finally {
      await server.close();
    }
  });

  test('with an API key, /dashboard and /stats also take it as ?key=; no other route does', async () => {
    const { server, url } = await started({ apiKey: KEY });
    try {
      const status = async (path: string, init?: RequestInit) => (await fetch(`${url}${path}`, init)).status;
      assert.equal(await status('/dashboard'), 401);
      assert.equal(await status('/stats'), 401);
      for (const path of ['/dashboard', '/stats']) {
        assert.equal(await status(`${path}?key=${KEY}`), 200, `${path}?key=<the key>`);
        assert.equal(await status(`${path}?key=${encodeURIComponent(KEY)}&period=1`), 200, 'among other parameters');
        assert.equal(await status(`${path}?key=${KEY.slice(0, -1)}x`), 401, 'a wrong key of the same length');
        assert.equal(await status(`${path}?key=${KEY}x`), 401, 'a longer key');
        assert.equal(await status(`${path}?key=`), 401, 'an empty key');
        assert.equal(await status(`${path}?other=${KEY}`), 401, 'the key under another name');
        assert.equal(await status(path, { headers: { 'x-api-key': KEY } }), 200, 'the header still works');
      }
      assert.equal(await status(`/metrics?key=${KEY}`), 401, '/metrics takes the key only as a header');
      assert.equal(await status(`/v2?key=${KEY}`), 401);
      assert.equal(
        await status(`/predict?key=${KEY}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"text":"hi"}',
        }),
        401,
        '/predict takes the key only as a header',
      );
    } finally {
      await server.close();
    }
  });
});

test('in headless Chromium, /dashboard charts throughput, latency and replica utilization of the load a client sends', {
  timeout: 30_000,
}, async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip('Chromium is not installed: apt-get install chromium (the CI script does)');
    return;
  }
  const { server, url } = await started({ apiKey: KEY, replicas: 2 });
  let browser: Browser | null = null;
  let stop: (() => Promise<number>) | null = null;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
        '--disable-sync',
      ],
    });
    const page = await browser.newPage();
    const requested: string[] = [];
    const problems: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });

    // The key rides in the page address (a browser sends no header there); the page passes it on.
    const opened = await page.goto(`${url}/dashboard?key=${KEY}`);
    assert.equal(opened?.status(), 200);
    await page.waitForFunction(() => document.getElementById('status')?.dataset.state === 'ok', null, {
      timeout: 5_000,
    });
    assert.equal(await page.textContent('#model'), 'sst2-distilbert-tiny');

    stop = load(url, 6);
    // Runs in the page: the charts' newest values, as the page itself computed them.
    await page.waitForFunction(
      () => {
        const latest = (id: string) => Number(document.getElementById(`chart-${id}`)?.dataset.latest || 0);
        return latest('throughput') > 0 && latest('utilization') > 0;
      },
      null,
      { timeout: 10_000, polling: 100 },
    );
    const answered = await stop();
    stop = null;
    assert.ok(answered > 0);

    const charts = await page.$$eval('figure.chart', (figures) =>
      Object.fromEntries(figures.map((f) => [f.id, { ...(f as HTMLElement).dataset }])),
    );
    const throughput = charts['chart-throughput']!;
    const latency = charts['chart-latency']!;
    const utilization = charts['chart-utilization']!;
    assert.ok(Number(throughput.latest) > 0, `throughput ${throughput.latest}`);
    assert.ok(Number(latency.points) > 0, 'the latency chart has points');
    assert.ok(
      Number(latency.latestP50) > 0 && Number(latency.latestP50) <= Number(latency.latestP99),
      `p50 ${latency.latestP50}, p99 ${latency.latestP99}`,
    );
    assert.ok(Number(charts['chart-queue']!.points) > 0, 'the queue chart has points');
    assert.ok(Number(utilization.latest) > 0 && Number(utilization.latest) <= 100, `utilization ${utilization.latest}`);
    assert.ok('latestReplica0' in utilization && 'latestReplica1' in utilization, 'one series per replica');
    assert.notEqual(await page.textContent('#now-throughput'), '–', 'the current figure is shown as text too');

    assert.deepEqual(problems, []);
    const stats = requested.filter((u) => new URL(u).pathname === '/stats');
    assert.ok(stats.length >= 2, `the page polled /stats (${stats.length} times)`);
    const elsewhere = requested.filter((u) => new URL(u).hostname !== '127.0.0.1');
    assert.deepEqual(elsewhere, [], 'the page requested nothing outside 127.0.0.1');
  } finally {
    await stop?.().catch(() => {});
    await browser?.close();
    await server.close();
  }
});
