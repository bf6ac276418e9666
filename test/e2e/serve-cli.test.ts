/** `kiln serve` as a process: PORT honoured, loopback only, ready line, /predict, clean stop. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLI, EMBEDDED_MODEL, REPO, serveProcess, tempDir } from '../fixtures/models.js';

test('kiln serve SOURCE with PORT=0 compiles, listens on 127.0.0.1, predicts, and stops cleanly on SIGTERM', async () => {
  const dir = await tempDir();
  const { child, ready, stderr } = serveProcess([EMBEDDED_MODEL], { PORT: '0', KILN_CACHE_DIR: join(dir, 'cache') });
  const url = await ready;
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.notEqual(url.endsWith(':8080'), true, 'PORT=0 from the environment picks a free port');
  const res = await fetch(`${url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"text":"I absolutely loved this movie, it was fantastic!"}',
  });
  assert.equal(((await res.json()) as { label: string }).label, 'POSITIVE');
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const [code] = await exited;
  assert.equal(code, 0, stderr());
  assert.match(stderr(), /SIGTERM, stopping[\s\S]*stopped/);
});

test('kiln serve on a source that cannot compile prints the coded error and exits 1', async () => {
  const dir = await tempDir();
  const child = spawn(process.execPath, [CLI, 'serve', join(dir, 'missing-model'), '--port', '0'], {
    cwd: REPO,
    env: { ...process.env, KILN_CACHE_DIR: join(dir, 'cache') },
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const [code] = await once(child, 'exit');
  assert.equal(code, 1);
  assert.match(stderr, /KILN_ERR_SOURCE_NOT_FOUND/);
});
