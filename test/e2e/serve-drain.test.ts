/**
 * `kiln serve` as a process under SIGTERM: it drains (health 503 at once, new requests 503, every
 * accepted request answered) and exits 0; SAGEMAKER_BIND_TO_PORT picks the port; without ARTIFACT
 * and without /opt/ml/model it says what is missing.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { test } from 'node:test';
import { CLI, EMBEDDED_MODEL, errorCode, kiln, REPO, SHARED_CACHE_ENV } from '../fixtures/models.js';

/** Starts `kiln serve`; `waitFor(re)` resolves with the match once stderr shows it. */
function serve(
  args: string[],
  env: NodeJS.ProcessEnv,
): { child: ChildProcess; stderr: () => string; waitFor: (re: RegExp) => Promise<RegExpExecArray> } {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { cwd: REPO, env: { ...process.env, ...env } });
  let stderr = '';
  const watchers: Array<{ re: RegExp; resolve: (m: RegExpExecArray) => void; reject: (e: Error) => void }> = [];
  const check = (): void => {
    for (const w of [...watchers]) {
      const m = w.re.exec(stderr);
      if (m) {
        watchers.splice(watchers.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    check();
  });
  child.on('exit', (code) => {
    for (const w of watchers.splice(0))
      w.reject(new Error(`kiln serve exited with ${code} before ${w.re}:\n${stderr}`));
  });
  const waitFor = (re: RegExp): Promise<RegExpExecArray> =>
    new Promise((resolve, reject) => {
      watchers.push({ re, resolve, reject });
      check();
    });
  return { child, stderr: () => stderr, waitFor };
}

/**
 * A POST whose headers are sent and whose body is held back: the server has received the request
 * (it counts as in flight) but cannot answer until `finish()` sends the rest.
 */
function heldRequest(
  url: string,
  body: string,
): { finish: () => void; response: Promise<{ status: number; body: string }> } {
  const req = request(`${url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
  });
  const half = Math.floor(body.length / 2);
  req.write(body.slice(0, half));
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c: Buffer) => {
        text += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
  });
  return { finish: () => req.end(body.slice(half)), response };
}

test('SIGTERM drains kiln serve: /ping turns 503, new requests get 503 KILN_ERR_HTTP_DRAINING, every accepted request is answered, exit 0', {
  timeout: 60_000,
}, async () => {
  const { child, stderr, waitFor } = serve([EMBEDDED_MODEL], {
    PORT: '',
    SAGEMAKER_BIND_TO_PORT: '0',
    ...SHARED_CACHE_ENV,
  });
  const url = (await waitFor(/listening on (http:\/\/[^ ]+)/))[1]!;
  assert.doesNotMatch(url, /:8080$/, 'SAGEMAKER_BIND_TO_PORT=0 picked a free port');
  await waitFor(/ ready in /);
  const exited = once(child, 'exit');

  // Four requests the server has received but cannot finish before the signal: their bodies are
  // held back until it has come, so none can be answered early whatever the machine's speed.
  const held = Array.from({ length: 4 }, (_, r) =>
    heldRequest(
      url,
      JSON.stringify({
        texts: Array.from({ length: 60 }, (_, i) =>
          i % 2 === 0 ? `a wonderful film ${r}-${i}` : `a dreadful film ${r}-${i}`,
        ),
      }),
    ),
  );
  // The server counts a request from its headers; the /metrics request counts itself.
  for (;;) {
    const page = await (await fetch(`${url}/metrics`)).text();
    if (/^kiln_http_requests_in_flight 5$/m.test(page)) break;
  }
  child.kill('SIGTERM');
  const [, inFlight] = await waitFor(/SIGTERM, stopping: answering (\d+) request/);
  assert.equal(inFlight, '4');

  const ping = await fetch(`${url}/ping`);
  assert.equal(ping.status, 503);
  assert.equal(((await ping.json()) as { error: { code: string } }).error.code, 'KILN_ERR_HTTP_DRAINING');
  assert.equal((await fetch(`${url}/v2/health/ready`)).status, 503);
  const late = await fetch(`${url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"text":"too late"}',
  });
  assert.equal(late.status, 503);
  assert.equal(((await late.json()) as { error: { code: string } }).error.code, 'KILN_ERR_HTTP_DRAINING');

  for (const h of held) h.finish();
  for (const { status, body } of await Promise.all(held.map((h) => h.response))) {
    assert.equal(status, 200, body);
    const { predictions } = JSON.parse(body) as { predictions: Array<{ label: string }> };
    assert.equal(predictions.length, 60);
    assert.deepEqual(
      predictions.slice(0, 2).map((p) => p.label),
      ['POSITIVE', 'NEGATIVE'],
    );
  }
  const [code] = await exited;
  assert.equal(code, 0, stderr());
  assert.match(stderr(), /stopped/);
});

test('kiln serve without ARTIFACT and without /opt/ml/model → KILN_ERR_CLI_MISSING_ARGUMENT, exit 1', {
  skip: existsSync('/opt/ml/model') && 'this machine has /opt/ml/model',
}, async () => {
  const result = await kiln(['serve', '--port', '0']);
  assert.equal(result.code, 1);
  assert.equal(errorCode(result.stderr), 'KILN_ERR_CLI_MISSING_ARGUMENT');
  assert.match(result.stderr, /\/opt\/ml\/model/);
});
