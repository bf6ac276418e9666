/**
 * Models by name, as a user runs them: `kiln compile hf:ORG/NAME`, `kiln run`, `kiln pull`,
 * `kiln cache`, against the fake Hub (HF_ENDPOINT) with a fresh HF_HOME. The Hub is stopped in
 * the last test, so the tests run in order.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathKind } from '../../src/core/fs.js';
import { type FakeHub, HUB_TOKEN, startFakeHub } from '../fixtures/fake-hub.js';
import { embeddedModelFiles, pickleOnlyFiles, writeShardedCheckpoint } from '../fixtures/hub-repos.js';
import { EMBEDDED_MODEL, errorCode, kiln, SHARED_CACHE_ENV, serveProcess, tempDir } from '../fixtures/models.js';

const TEXTS = ['a gripping, beautifully acted film', 'dull and far too long', 'it was fine'];

let hub: FakeHub;
let dir: string;
let sharded: string;
let env: NodeJS.ProcessEnv;

before(async () => {
  dir = await tempDir('kiln-hub-cli-');
  sharded = join(dir, 'sharded-checkpoint');
  await mkdir(sharded);
  const files = await embeddedModelFiles();
  hub = await startFakeHub([
    { id: 'kiln-test/sst2', files },
    { id: 'kiln-test/sharded', files: await writeShardedCheckpoint(sharded) },
    { id: 'kiln-test/private', files, private: true },
    { id: 'kiln-test/corrupt', files, corrupt: ['onnx/model.onnx'] },
    { id: 'kiln-test/pickle', files: await pickleOnlyFiles() },
  ]);
  env = {
    HF_ENDPOINT: hub.url,
    HF_HOME: join(dir, 'hf-home'),
    HF_HUB_OFFLINE: '',
    KILN_CACHE_DIR: join(dir, 'kiln-cache'),
  };
});

after(async () => {
  await hub?.close();
});

async function logits(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<number[][]> {
  const result = await kiln(['run', ...args, ...TEXTS, '--json'], { env: { ...env, ...extraEnv }, cwd: dir });
  assert.equal(result.code, 0, result.stderr);
  return result.stdout
    .trim()
    .split('\n')
    .map((line) => (JSON.parse(line) as { logits: number[] }).logits);
}

/** Every file under `root` whose bytes contain `needle`. */
async function filesContaining(root: string, needle: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if ((await readFile(path)).includes(needle)) found.push(path);
  }
  return found;
}

describe('kiln compile hf:ORG/NAME', () => {
  test('an ONNX repo compiles, and kiln run --json gives the logits of compiling the same folder', async () => {
    const result = await kiln(['compile', 'hf:kiln-test/sst2', '--json'], { env, cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    const compiled = JSON.parse(result.stdout) as {
      artifact: string;
      cache: string;
      manifest: { source: { path: string } };
    };
    assert.equal(compiled.artifact, join(dir, 'sst2.kiln'), 'named after the repo, not the commit');
    assert.equal(compiled.cache, 'miss');
    const commit = hub.commitOf('kiln-test/sst2');
    assert.equal(
      compiled.manifest.source.path,
      join(env.HF_HOME!, 'hub', 'models--kiln-test--sst2', 'snapshots', commit),
    );
    assert.equal(await pathKind(join(compiled.manifest.source.path, 'config.json')), 'file', "Python's layout");
    // The embedded model itself through the run's shared cache: its compile is not under test here.
    assert.deepEqual(await logits([compiled.artifact]), await logits([EMBEDDED_MODEL], SHARED_CACHE_ENV));
  });

  test('a sharded safetensors-only repo compiles (imported on the way) to the logits of the same checkpoint folder', async () => {
    assert.deepEqual(await logits(['hf:kiln-test/sharded']), await logits([sharded]));
  });

  test('the same SOURCE again downloads and rebuilds nothing: a branch costs one revision request, a pinned sha and HF_HUB_OFFLINE=1 none', async () => {
    let from = hub.requests.length;
    const again = await kiln(['compile', 'hf:kiln-test/sst2', '-o', join(dir, 'again.kiln'), '--json'], { env });
    assert.equal(JSON.parse(again.stdout).cache, 'hit', again.stderr);
    assert.deepEqual(
      hub.requests.slice(from).map((r) => r.url),
      ['/api/models/kiln-test/sst2/revision/main'],
    );
    from = hub.requests.length;
    const pinned = await kiln(
      ['compile', `hf:kiln-test/sst2@${hub.commitOf('kiln-test/sst2')}`, '-o', join(dir, 'pinned.kiln'), '--json'],
      { env },
    );
    assert.equal(JSON.parse(pinned.stdout).cache, 'hit', pinned.stderr);
    const offline = await kiln(['compile', 'hf:kiln-test/sst2', '-o', join(dir, 'offline.kiln'), '--json'], {
      env: { ...env, HF_HUB_OFFLINE: '1' },
    });
    assert.equal(JSON.parse(offline.stdout).cache, 'hit', offline.stderr);
    assert.equal(hub.requests.length, from, 'no request at all');
  });

  test('a bare ORG/NAME that is not a local path is taken as a Hub model, and stderr says so', async () => {
    const result = await kiln(['compile', 'kiln-test/sst2', '-o', join(dir, 'bare.kiln'), '--json'], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stderr,
      /"kiln-test\/sst2" is not a local path; using the Hugging Face Hub model kiln-test\/sst2 \(revision main\)/,
    );
  });
});

describe('tokens and integrity', () => {
  test('a private repo fails coded without HF_TOKEN and compiles with it; the token is in no output and no file, and the LFS host never receives it', async () => {
    const denied = await kiln(['compile', 'hf:kiln-test/private', '-o', join(dir, 'private.kiln')], { env });
    assert.equal(denied.code, 1);
    assert.equal(errorCode(denied.stderr), 'KILN_ERR_HUB_REPO_NOT_FOUND', denied.stderr);
    assert.match(denied.stderr, /HF_TOKEN/);
    const from = hub.requests.length;
    const allowed = await kiln(['compile', 'hf:kiln-test/private', '-o', join(dir, 'private.kiln')], {
      env: { ...env, HF_TOKEN: HUB_TOKEN },
    });
    assert.equal(allowed.code, 0, allowed.stderr);
    for (const output of [denied.stdout, denied.stderr, allowed.stdout, allowed.stderr])
      assert.ok(!output.includes(HUB_TOKEN), 'the token is printed');
    for (const root of [env.HF_HOME!, env.KILN_CACHE_DIR!, join(dir, 'private.kiln')])
      assert.deepEqual(await filesContaining(root, HUB_TOKEN), []);
    const cdn = hub.requests.slice(from).filter((r) => r.server === 'cdn');
    assert.ok(cdn.length > 0);
    assert.ok(
      cdn.every((r) => r.authorization === null),
      'a request to the LFS host carried the token',
    );
  });

  test('an LFS file that does not match its SHA-256 → KILN_ERR_HUB_CHECKSUM, and the snapshot shows no file', async () => {
    const result = await kiln(['compile', 'hf:kiln-test/corrupt', '-o', join(dir, 'corrupt.kiln')], { env });
    assert.equal(result.code, 1);
    assert.equal(errorCode(result.stderr), 'KILN_ERR_HUB_CHECKSUM', result.stderr);
    const snapshot = join(
      env.HF_HOME!,
      'hub',
      'models--kiln-test--corrupt',
      'snapshots',
      hub.commitOf('kiln-test/corrupt'),
    );
    assert.equal(await pathKind(snapshot), 'missing');
    assert.equal(await pathKind(join(dir, 'corrupt.kiln')), 'missing');
  });

  test('an unknown repo → KILN_ERR_HUB_REPO_NOT_FOUND; a pytorch_model.bin-only repo → KILN_ERR_HUB_NO_WEIGHTS', async () => {
    const unknown = await kiln(['compile', 'hf:kiln-test/no-such-model'], { env, cwd: dir });
    assert.equal(errorCode(unknown.stderr), 'KILN_ERR_HUB_REPO_NOT_FOUND', unknown.stderr);
    const pickle = await kiln(['compile', 'hf:kiln-test/pickle'], { env, cwd: dir });
    assert.equal(errorCode(pickle.stderr), 'KILN_ERR_HUB_NO_WEIGHTS', pickle.stderr);
    assert.match(pickle.stderr, /never loads PyTorch pickles/);
  });
});

describe('kiln pull and kiln cache', () => {
  test('two kiln pull at once: the second waits, each file is downloaded once, both print the snapshot folder', async () => {
    const home = { ...env, HF_HOME: join(dir, 'hf-home-race') };
    const from = hub.requests.length;
    const held = hub.holdDownloads();
    const revisions = (): number => hub.requests.slice(from).filter((r) => r.url.endsWith('/revision/main')).length;
    const first = kiln(['pull', 'hf:kiln-test/sst2'], { env: home });
    await hub.waitFor((r) => r.server === 'cdn' && hub.requests.indexOf(r) >= from);
    const second = kiln(['pull', 'hf:kiln-test/sst2'], { env: home });
    await hub.waitFor((r) => r.url.endsWith('/revision/main') && revisions() === 2);
    held.release();
    const [a, b] = await Promise.all([first, second]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const snapshot = join(home.HF_HOME, 'hub', 'models--kiln-test--sst2', 'snapshots', hub.commitOf('kiln-test/sst2'));
    assert.equal(a.stdout.trim(), snapshot);
    assert.equal(b.stdout.trim(), snapshot);
    assert.equal(hub.requests.slice(from).filter((r) => r.server === 'cdn').length, 1);
  });

  test('pull --json names the commit and files; cache ls lists the Hub snapshot; cache clear hf:… removes that model only', async () => {
    const pulled = await kiln(['pull', 'hf:kiln-test/sst2', '--json'], { env });
    assert.equal(pulled.code, 0, pulled.stderr);
    const info = JSON.parse(pulled.stdout) as { commit: string; snapshot: string; files: Array<{ path: string }> };
    assert.equal(info.commit, hub.commitOf('kiln-test/sst2'));
    assert.deepEqual(info.files.map((f) => f.path).sort(), [
      'config.json',
      'onnx/model.onnx',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    const ls = await kiln(['cache', 'ls'], { env });
    assert.match(ls.stdout, new RegExp(`kiln-test/sst2\\s+main → ${info.commit.slice(0, 12)}\\s+4\\s+18\\.8 MiB`));
    const lines = (await kiln(['cache', 'ls', '--json'], { env })).stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.ok(lines.some((l) => l.kind === 'hub-snapshot' && l.repo === 'kiln-test/sst2' && l.commit === info.commit));
    const cleared = await kiln(['cache', 'clear', 'hf:kiln-test/sst2'], { env });
    assert.match(cleared.stdout, /removed Hub model kiln-test\/sst2/);
    assert.equal(await pathKind(join(env.HF_HOME!, 'hub', 'models--kiln-test--sst2')), 'missing');
    assert.equal(await pathKind(join(env.HF_HOME!, 'hub', 'models--kiln-test--sharded')), 'dir');
    assert.ok((await readdir(join(env.KILN_CACHE_DIR!, 'artifacts'))).length > 0, 'artifacts are kept');
  });

  test('kiln serve without ARTIFACT and without /opt/ml/model serves HF_MODEL_ID at HF_MODEL_REVISION', {
    skip: existsSync('/opt/ml/model') && 'this machine has /opt/ml/model',
    timeout: 90_000,
  }, async () => {
    const revision = hub.commitOf('kiln-test/sst2');
    const served = serveProcess(['--port', '0'], {
      ...env,
      HF_HOME: join(dir, 'hf-home-serve'),
      HF_MODEL_ID: 'kiln-test/sst2',
      HF_MODEL_REVISION: revision,
    });
    try {
      const url = await served.ready;
      const response = await fetch(`${url}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text: TEXTS[0] }),
      });
      assert.equal(response.status, 200);
      assert.equal(((await response.json()) as { label: string }).label, 'POSITIVE');
      assert.ok(hub.requests.some((r) => r.url.startsWith(`/kiln-test/sst2/resolve/${revision}/`)));
    } finally {
      served.child.kill('SIGTERM');
      if (served.child.exitCode === null) await once(served.child, 'exit');
    }
  });

  test('with the Hub stopped, compiling a cached model again succeeds with a warning; offline too', async () => {
    await hub.close();
    const down = await kiln(['compile', 'hf:kiln-test/sharded', '-o', join(dir, 'down.kiln'), '--json'], { env });
    assert.equal(down.code, 0, down.stderr);
    assert.equal(JSON.parse(down.stdout).cache, 'hit');
    assert.match(
      down.stderr,
      /cannot reach the Hub at .*; using the cached snapshot [0-9a-f]{40} of kiln-test\/sharded@main/,
    );
    const offline = await kiln(['run', 'hf:kiln-test/sharded', 'fine', '--json'], {
      env: { ...env, HF_HUB_OFFLINE: '1' },
    });
    assert.equal(offline.code, 0, offline.stderr);
    const uncached = await kiln(['compile', 'hf:kiln-test/sst2'], { env, cwd: dir });
    assert.equal(errorCode(uncached.stderr), 'KILN_ERR_HUB_UNREACHABLE', uncached.stderr);
    assert.match(uncached.stderr, /nothing is cached for kiln-test\/sst2.*HF_HUB_OFFLINE=1/);
  });
});
