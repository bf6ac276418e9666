/** `kiln package` and serving its tar.gz, as the SageMaker container runs it. */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { cp, mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as tar from 'tar';
import { EMBEDDED_MODEL, kiln, SHARED_CACHE_ENV, serveProcess, tempDir } from '../fixtures/models.js';

async function stop(child: ChildProcess, stderr: () => string): Promise<void> {
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const [code] = await exited;
  assert.equal(code, 0, stderr());
}

/** One package of the embedded model for every test (compiling it is the slow part). */
const shared = (async () => {
  const dir = await tempDir();
  const env = { KILN_CACHE_DIR: join(dir, 'cache') };
  const out = join(dir, 'model.tar.gz');
  const result = await kiln(['package', EMBEDDED_MODEL, '-o', out, '--json'], { env: SHARED_CACHE_ENV });
  return { dir, env, out, result };
})();

test('kiln package SOURCE writes a tar.gz whose root holds the artifact files, and reports its sha256', async () => {
  const { out, result } = await shared;
  assert.equal(result.code, 0, result.stderr);
  const report = JSON.parse(result.stdout) as { path: string; files: string[]; bytes: number; sha256: string };
  assert.equal(report.path, out);
  assert.match(report.sha256, /^[0-9a-f]{64}$/);
  const entries: string[] = [];
  await tar.list({ file: out, onReadEntry: (entry) => entries.push(entry.path) });
  assert.ok(entries.includes('manifest.json') && entries.includes('model.onnx'), entries.join(', '));
  assert.deepEqual(
    entries.filter((e) => e.includes('/')),
    [],
    'no folder prefix: SageMaker extracts the root into /opt/ml/model',
  );
  assert.deepEqual(entries.sort(), [...report.files].sort());
  assert.equal(
    createHash('sha256')
      .update(await readFile(out))
      .digest('hex'),
    report.sha256,
  );
});

test('kiln serve model.tar.gz, started as the container starts it (KILN_HOST, SAGEMAKER_BIND_TO_PORT), answers /ping, /invocations, /predict and drains on SIGTERM', async () => {
  const { out, env } = await shared;
  const { child, ready, stderr } = serveProcess([out], {
    ...env,
    KILN_HOST: '0.0.0.0',
    SAGEMAKER_BIND_TO_PORT: '0',
    PORT: '',
  });
  const url = await ready;
  const port = new URL(url).port;
  // Bound to every interface: reachable on a non-loopback address too, where the machine has one.
  const external = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal);
  if (external)
    assert.equal(
      (await fetch(`http://${external.address}:${port}/ping`)).status,
      200,
      `not listening on ${external.address}`,
    );
  assert.equal((await fetch(`${url}/ping`)).status, 200);
  const invocations = await fetch(`${url}/invocations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"inputs":"I absolutely loved this movie, it was fantastic!"}',
  });
  assert.equal(invocations.status, 200);
  assert.match(await invocations.text(), /POSITIVE/);
  const predict = await fetch(`${url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"text":"A dull, lifeless and boring film."}',
  });
  assert.equal(((await predict.json()) as { label: string }).label, 'NEGATIVE');
  await stop(child, stderr);
});

test('kiln serve reads KILN_HOST as the default of --host, and checks it like the flag', async () => {
  const { env } = await shared;
  const result = await kiln(['serve', EMBEDDED_MODEL], { env: { ...env, KILN_HOST: 'every interface' } });
  assert.equal(result.code, 1);
  assert.match(result.stderr, /KILN_ERR_CLI_INVALID_FLAG: KILN_HOST \(environment\) must be a host name or IP address/);
});

test('kiln serve DIR serves a folder laid out like /opt/ml/model (the package extracted)', async () => {
  const { dir, out, env } = await shared;
  const modelDir = join(dir, 'opt-ml-model');
  await mkdir(modelDir);
  await tar.extract({ file: out, cwd: modelDir });
  const { child, ready, stderr } = serveProcess([modelDir, '--port', '0'], env);
  const url = await ready;
  const res = await fetch(`${url}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"text":"I absolutely loved this movie, it was fantastic!"}',
  });
  assert.equal(((await res.json()) as { label: string }).label, 'POSITIVE');
  await stop(child, stderr);
});

test('kiln run on a truncated tar.gz fails with KILN_ERR_PACKAGE_INVALID', async () => {
  const { dir, out, env } = await shared;
  const truncated = join(dir, 'truncated.tar.gz');
  await cp(out, truncated);
  await truncate(truncated, 4096);
  const result = await kiln(['run', truncated, 'good'], { env });
  assert.equal(result.code, 1);
  assert.match(
    result.stderr,
    /KILN_ERR_PACKAGE_INVALID: "[^"]*truncated\.tar\.gz" is not a usable kiln package: it cannot be extracted/,
  );
});

test('kiln package refuses a corrupted artifact with KILN_ERR_ARTIFACT_CORRUPT and writes nothing', async () => {
  const { dir, out, env } = await shared;
  const artifact = join(dir, 'corrupt.kiln');
  await mkdir(artifact);
  await tar.extract({ file: out, cwd: artifact });
  await writeFile(join(artifact, 'tokenizer.json'), '{}');
  const target = join(dir, 'corrupt.tar.gz');
  const result = await kiln(['package', artifact, '-o', target], { env });
  assert.equal(result.code, 1);
  assert.match(
    result.stderr,
    /KILN_ERR_ARTIFACT_CORRUPT: artifact "[^"]*corrupt\.kiln" is corrupt: tokenizer\.json has 2 bytes/,
  );
  await assert.rejects(readFile(target), { code: 'ENOENT' });
});
