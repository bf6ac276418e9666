/** `kiln serve DIR` with several models: each served under its name, requests name theirs. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cp, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLI, EMBEDDED_MODEL, kiln, REPO, SHARED_CACHE_ENV, sourceFolder, tempDir } from '../fixtures/models.js';

test('kiln serve on a model repository serves every model by name, and asks which when a request does not say', async () => {
  const dir = await tempDir();
  const env = { KILN_CACHE_DIR: join(dir, 'cache') };
  const repository = join(dir, 'models');
  await mkdir(repository);
  // One compiled artifact and one source folder (compiled on the way).
  assert.equal(
    (await kiln(['compile', EMBEDDED_MODEL, '-o', join(repository, 'sentiment')], { env: SHARED_CACHE_ENV })).code,
    0,
  );
  await sourceFolder(repository, 'tiny');
  await cp(join(EMBEDDED_MODEL, 'README.md'), join(repository, 'README.md'));

  const child = spawn(process.execPath, [CLI, 'serve', repository, '--port', '0'], {
    cwd: REPO,
    env: { ...process.env, ...env },
  });
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      const match = /listening on (http:\/\/[^ ]+)/.exec(stderr);
      if (match && stderr.includes('try: curl')) resolve(match[1]!);
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
  });
  try {
    assert.match(stderr, /model sst2-distilbert-tiny ready/);
    assert.match(stderr, /model tiny ready/);
    const json = { 'content-type': 'application/json' };
    const post = (path: string, body: unknown, headers: Record<string, string> = json) =>
      fetch(`${url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
    assert.deepEqual(await (await fetch(`${url}/ping`)).json(), {
      status: 'ok',
      models: ['sst2-distilbert-tiny', 'tiny'],
    });

    const unnamed = await post('/predict', { text: 'I loved it' });
    assert.equal(unnamed.status, 400);
    assert.match(
      ((await unnamed.json()) as { error: { code: string; message: string } }).error.message,
      /serves several models \(sst2-distilbert-tiny, tiny\); name one with "model"/,
    );
    const named = await post('/predict', {
      model: 'sst2-distilbert-tiny',
      text: 'I absolutely loved this movie, it was fantastic!',
    });
    assert.deepEqual(((await named.json()) as { label: string }).label, 'POSITIVE');
    assert.equal((await post('/predict', { model: 'tiny', text: 'hello' })).status, 200);
    const unknown = await post('/predict', { model: 'nope', text: 'hello' });
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, 'KILN_ERR_HTTP_UNKNOWN_MODEL');

    assert.equal((await fetch(`${url}/v2/models/tiny`)).status, 200);
    assert.equal((await fetch(`${url}/v2/models/nope`)).status, 404);
    const infer = await post('/v2/models/tiny/infer', {
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: ['hello'] }],
    });
    assert.equal(infer.status, 200);
    const sagemaker = await post(
      '/invocations',
      { inputs: 'I loved it' },
      { ...json, 'x-amzn-sagemaker-target-model': 'sst2-distilbert-tiny.tar.gz' },
    );
    assert.equal(sagemaker.status, 200);
    assert.equal(((await fetch(`${url}/stats?model=tiny`).then((r) => r.json())) as { model: string }).model, 'tiny');
  } finally {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  }
});
