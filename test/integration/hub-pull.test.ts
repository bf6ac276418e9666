/**
 * pullModel against the fake Hub (test/fixtures/fake-hub.ts): Python's cache layout, which
 * requests each case makes, offline and unreachable fallbacks, tokens, verification, resume,
 * two pulls at once, and every coded error.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isKilnError } from '../../src/core/errors.js';
import { pathKind } from '../../src/core/fs.js';
import { parsePrefixedSource } from '../../src/hub/model-id.js';
import { type PullOptions, pullModel } from '../../src/hub/pull.js';
import { type FakeHub, HUB_TOKEN, startFakeHub } from '../fixtures/fake-hub.js';
import { embeddedModelFiles, pickleOnlyFiles, writeShardedCheckpoint } from '../fixtures/hub-repos.js';
import { tempDir } from '../fixtures/models.js';

let hub: FakeHub;
let root: string;
let files: Record<string, Buffer>;
const ONNX_SHA = (): string => createHash('sha256').update(files['onnx/model.onnx']!).digest('hex');

before(async () => {
  root = await tempDir('kiln-hub-pull-');
  files = await embeddedModelFiles();
  await mkdir(join(root, 'sharded'));
  hub = await startFakeHub([
    { id: 'kiln-test/sst2', files, refs: ['v1.0'] },
    { id: 'kiln-test/private', files, private: true },
    { id: 'kiln-test/gated', files, gated: true },
    { id: 'kiln-test/corrupt', files, corrupt: ['onnx/model.onnx'] },
    { id: 'kiln-test/pickle', files: await pickleOnlyFiles() },
    { id: 'kiln-test/sharded', files: await writeShardedCheckpoint(join(root, 'sharded')) },
    { id: 'kiln-test/escape', files: { 'config.json': '{}', '../../outside.json': '{}' } },
  ]);
});

after(async () => {
  await hub?.close();
});

let homes = 0;
/** A fresh HF_HOME (an empty Hub cache) pointed at the fake Hub, online. */
function freshEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  homes += 1;
  return {
    HF_ENDPOINT: hub.url,
    HF_HOME: join(root, `home-${homes}`),
    HF_HUB_OFFLINE: '',
    HF_TOKEN: '',
    HUGGING_FACE_HUB_TOKEN: '',
    ...extra,
  };
}

function pull(source: string, env: NodeJS.ProcessEnv, options: PullOptions = {}) {
  return pullModel(parsePrefixedSource(source)!, { quiet: true, env, ...options });
}

async function rejectsWith(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isKilnError(err), `expected ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

/** The URL of a loopback port nothing listens on (a server opened and closed): connections are refused. */
async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/** Every file under `dir`, recursively, as paths relative to it. */
async function tree(dir: string): Promise<string[]> {
  if ((await pathKind(dir)) !== 'dir') return [];
  return (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((e) => !e.isDirectory())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

describe('pullModel: the cache as Python lays it out', () => {
  test('pull hf:kiln-test/sst2 writes refs/main, snapshots/<sha> symlinks into blobs named by SHA-256 (LFS) or git blob id, and trees/<sha>.json; only the files kiln needs', async () => {
    const env = freshEnv();
    const snapshot = await pull('hf:kiln-test/sst2', env);
    const commit = hub.commitOf('kiln-test/sst2');
    const repoDir = join(env.HF_HOME!, 'hub', 'models--kiln-test--sst2');
    assert.equal(snapshot.commit, commit);
    assert.equal(snapshot.dir, join(repoDir, 'snapshots', commit));
    assert.equal(await readFile(join(repoDir, 'refs', 'main'), 'utf8'), commit);
    assert.deepEqual(await tree(snapshot.dir), [
      'config.json',
      'onnx/model.onnx',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    assert.equal(await readlink(join(snapshot.dir, 'onnx', 'model.onnx')), `../../../blobs/${ONNX_SHA()}`);
    assert.match(await readlink(join(snapshot.dir, 'config.json')), /^\.\.\/\.\.\/blobs\/[0-9a-f]{40}$/);
    for (const name of await tree(snapshot.dir))
      assert.deepEqual(await readFile(join(snapshot.dir, name)), files[name], `${name} is the served file`);
    const listing = JSON.parse(await readFile(join(repoDir, 'trees', `${commit}.json`), 'utf8'));
    assert.equal(listing.format_version, 1);
    assert.equal(listing.files['onnx/model.onnx'].lfs_sha256, ONNX_SHA());
    assert.ok('model.safetensors' in listing.files, 'the listing is the whole repo, as Python writes it');
    assert.ok(!(await readdir(join(repoDir, 'blobs'))).some((b) => b.endsWith('.incomplete')));
    assert.ok(
      !hub.requests.some((r) => r.url.includes('model.safetensors') || r.url.includes('README')),
      'weights not chosen and files kiln does not read are never downloaded',
    );
  });

  test('a pinned commit already cached makes no request; a branch makes one (its revision); offline makes none', async () => {
    const env = freshEnv();
    const commit = hub.commitOf('kiln-test/sst2');
    await pull('hf:kiln-test/sst2', env);
    let before = hub.requests.length;
    const pinned = await pull(`hf:kiln-test/sst2@${commit}`, env);
    assert.equal(hub.requests.length, before, 'pinned and cached: no request');
    assert.equal(pinned.from, 'cache');
    before = hub.requests.length;
    await pull('hf:kiln-test/sst2', env);
    assert.deepEqual(
      hub.requests.slice(before).map((r) => r.url),
      ['/api/models/kiln-test/sst2/revision/main'],
    );
    before = hub.requests.length;
    const offline = await pull('hf:kiln-test/sst2', { ...env, HF_HUB_OFFLINE: '1' });
    assert.equal(offline.commit, commit);
    assert.equal(hub.requests.length, before, 'offline: no request at all');
  });

  test('a tag resolves to the same commit and gets its own ref; a sharded checkpoint brings its index and every shard', async () => {
    const env = freshEnv();
    const tagged = await pull('hf:kiln-test/sst2@v1.0', env);
    assert.equal(
      await readFile(join(env.HF_HOME!, 'hub', 'models--kiln-test--sst2', 'refs', 'v1.0'), 'utf8'),
      tagged.commit,
    );
    const sharded = await pull('hf:kiln-test/sharded', env);
    assert.deepEqual(await tree(sharded.dir), [
      'config.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
  });

  test('--weights safetensors takes model.safetensors where the repo also has ONNX; --weights onnx on a checkpoint-only repo is KILN_ERR_HUB_NO_WEIGHTS', async () => {
    const env = freshEnv();
    const snapshot = await pull('hf:kiln-test/sst2', env, { weights: 'safetensors' });
    assert.ok((await tree(snapshot.dir)).includes('model.safetensors'));
    assert.ok(!(await tree(snapshot.dir)).includes('onnx/model.onnx'));
    await rejectsWith(
      pull('hf:kiln-test/sharded', env, { weights: 'onnx' }),
      'KILN_ERR_HUB_NO_WEIGHTS',
      /drop --weights onnx/,
    );
  });
});

describe('pullModel: offline and unreachable', () => {
  test('offline and not cached → KILN_ERR_HUB_NOT_CACHED naming the cache, and no request', async () => {
    const env = freshEnv({ HF_HUB_OFFLINE: '1' });
    const before = hub.requests.length;
    await rejectsWith(
      pull('hf:kiln-test/sst2', env),
      'KILN_ERR_HUB_NOT_CACHED',
      /nothing is cached for kiln-test\/sst2/,
    );
    assert.equal(hub.requests.length, before);
  });

  test('Hub unreachable: a cached branch is used with a warning; an uncached one → KILN_ERR_HUB_UNREACHABLE naming HF_HUB_OFFLINE and what is cached', async () => {
    const env = freshEnv();
    const first = await pull('hf:kiln-test/sst2', env);
    const down = { ...env, HF_ENDPOINT: await closedPort() };
    const again = await pull('hf:kiln-test/sst2', down);
    assert.equal(again.dir, first.dir);
    assert.equal(again.from, 'stale-cache');
    await rejectsWith(
      pull('hf:kiln-test/sst2@v1.0', down),
      'KILN_ERR_HUB_UNREACHABLE',
      /connection refused.*the cache at .* has kiln-test\/sst2 at main → [0-9a-f]{40}.*HF_HUB_OFFLINE=1/,
    );
  });
});

describe('pullModel: tokens', () => {
  test('a private repo: KILN_ERR_HUB_REPO_NOT_FOUND naming HF_TOKEN without a token; with HF_TOKEN it pulls, the CDN never sees the token, and no file holds it', async () => {
    const env = freshEnv();
    await rejectsWith(pull('hf:kiln-test/private', env), 'KILN_ERR_HUB_REPO_NOT_FOUND', /no token was sent.*HF_TOKEN/);
    const from = hub.requests.length;
    const snapshot = await pull('hf:kiln-test/private', { ...env, HF_TOKEN: HUB_TOKEN });
    assert.ok((await tree(snapshot.dir)).includes('onnx/model.onnx'));
    const made = hub.requests.slice(from);
    assert.ok(
      made.some((r) => r.server === 'cdn'),
      'the LFS file came from the CDN host',
    );
    for (const r of made)
      assert.equal(r.authorization, r.server === 'hub' ? `Bearer ${HUB_TOKEN}` : null, `${r.server} ${r.url}`);
    for (const name of await tree(env.HF_HOME!))
      assert.ok(!(await readFile(join(env.HF_HOME!, name))).includes(HUB_TOKEN), `${name} holds the token`);
  });

  test('a gated repo without a token, or a refused token → KILN_ERR_HUB_UNAUTHORIZED naming HF_TOKEN; the token is not in the message', async () => {
    await rejectsWith(pull('hf:kiln-test/gated', freshEnv()), 'KILN_ERR_HUB_UNAUTHORIZED', /gated.*HF_TOKEN/);
    const wrong = 'hf_wrongTokenThatTheHubRefuses';
    await assert.rejects(pull('hf:kiln-test/private', freshEnv({ HF_TOKEN: wrong })), (err: unknown) => {
      assert.ok(isKilnError(err));
      assert.equal(err.code, 'KILN_ERR_HUB_UNAUTHORIZED');
      assert.match(err.message, /token was refused/);
      assert.ok(!err.message.includes(wrong));
      return true;
    });
  });

  test("a token that does not start with hf_ (a mirror's) is sent as it is", async () => {
    const env = freshEnv({ HF_TOKEN: 'mirror-token' });
    const from = hub.requests.length;
    await rejectsWith(pull('hf:kiln-test/sst2', env), 'KILN_ERR_HUB_UNAUTHORIZED');
    assert.equal(hub.requests[from]?.authorization, 'Bearer mirror-token');
  });
});

describe('pullModel: integrity', () => {
  test('an LFS file whose bytes do not match its SHA-256 → KILN_ERR_HUB_CHECKSUM; no blob, no .incomplete, no snapshot file, no ref', async () => {
    const env = freshEnv();
    await rejectsWith(pull('hf:kiln-test/corrupt', env), 'KILN_ERR_HUB_CHECKSUM', new RegExp(`lists ${ONNX_SHA()}`));
    const repoDir = join(env.HF_HOME!, 'hub', 'models--kiln-test--corrupt');
    const left = await tree(repoDir);
    assert.ok(!left.some((f) => f.includes(ONNX_SHA())), `left: ${left.join(', ')}`);
    assert.ok(!left.some((f) => f.startsWith('snapshots/') || f.startsWith('refs/')), `left: ${left.join(', ')}`);
  });

  test('a connection cut mid-file is resumed with a Range request, and the file is whole', async () => {
    const env = freshEnv();
    const cut = 8 << 20;
    hub.cutNextDownload('kiln-test/sst2', 'onnx/model.onnx', cut);
    const from = hub.requests.length;
    const snapshot = await pull('hf:kiln-test/sst2', env);
    const ranges = hub.requests
      .slice(from)
      .filter((r) => r.server === 'cdn')
      .map((r) => r.range);
    assert.equal(ranges.length, 2, `CDN requests: ${ranges.join(', ')}`);
    assert.equal(ranges[0], null);
    // What the client had written when the cut reached it: all of it, or less by what was still queued.
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(ranges[1] ?? '')?.[1]);
    assert.ok(resumedAt > 0 && resumedAt <= cut, `second request: ${ranges[1]}`);
    assert.deepEqual(await readFile(join(snapshot.dir, 'onnx', 'model.onnx')), files['onnx/model.onnx']);
  });

  test('a killed download left blobs/<sha>.incomplete: the next pull resumes from its size', async () => {
    const env = freshEnv();
    const blobs = join(env.HF_HOME!, 'hub', 'models--kiln-test--sst2', 'blobs');
    await mkdir(blobs, { recursive: true });
    const half = files['onnx/model.onnx']!.subarray(0, 5_000_000);
    await writeFile(join(blobs, `${ONNX_SHA()}.incomplete`), half);
    const from = hub.requests.length;
    const snapshot = await pull('hf:kiln-test/sst2', env);
    assert.deepEqual(
      hub.requests
        .slice(from)
        .filter((r) => r.server === 'cdn')
        .map((r) => r.range),
      ['bytes=5000000-'],
    );
    assert.deepEqual(await readFile(join(snapshot.dir, 'onnx', 'model.onnx')), files['onnx/model.onnx']);
  });

  test('a listing that names a path outside the repo → KILN_ERR_HUB_BAD_RESPONSE, and nothing is written outside the cache', async () => {
    const env = freshEnv();
    await rejectsWith(pull('hf:kiln-test/escape', env), 'KILN_ERR_HUB_BAD_RESPONSE', /"\.\.\/\.\.\/outside\.json"/);
    assert.equal(await pathKind(join(env.HF_HOME!, 'outside.json')), 'missing');
    assert.equal(await pathKind(join(env.HF_HOME!, 'hub', 'outside.json')), 'missing');
  });

  test('two pulls of one repo at once: the second waits for the first, each file is downloaded once, both get the snapshot', async () => {
    const env = freshEnv();
    const from = hub.requests.length;
    const held = hub.holdDownloads();
    const first = pull('hf:kiln-test/sst2', env);
    await hub.waitFor((r) => r.server === 'cdn' && hub.requests.indexOf(r) >= from);
    const revisions = (): number => hub.requests.slice(from).filter((r) => r.url.endsWith('/revision/main')).length;
    const second = pull('hf:kiln-test/sst2', env);
    await hub.waitFor((r) => r.url.endsWith('/revision/main') && revisions() === 2);
    held.release();
    const [a, b] = await Promise.all([first, second]);
    assert.equal(a.dir, b.dir);
    assert.equal(a.downloaded.files, 4);
    assert.equal(b.downloaded.files, 0);
    assert.equal(hub.requests.slice(from).filter((r) => r.server === 'cdn').length, 1);
    assert.deepEqual(await readFile(join(b.dir, 'onnx', 'model.onnx')), files['onnx/model.onnx']);
  });
});

describe('pullModel: coded errors', () => {
  test('an unknown repo → KILN_ERR_HUB_REPO_NOT_FOUND; an unknown revision → KILN_ERR_HUB_REVISION_NOT_FOUND', async () => {
    await rejectsWith(
      pull('hf:kiln-test/no-such-model', freshEnv()),
      'KILN_ERR_HUB_REPO_NOT_FOUND',
      /kiln-test\/no-such-model/,
    );
    await rejectsWith(pull('hf:kiln-test/sst2@v9', freshEnv()), 'KILN_ERR_HUB_REVISION_NOT_FOUND', /"v9"/);
  });

  test('a pytorch_model.bin-only repo → KILN_ERR_HUB_NO_WEIGHTS naming the safetensors conversion; nothing is downloaded', async () => {
    const from = hub.requests.length;
    await rejectsWith(
      pull('hf:kiln-test/pickle', freshEnv()),
      'KILN_ERR_HUB_NO_WEIGHTS',
      /pytorch_model\.bin.*never loads PyTorch pickles.*safetensors/,
    );
    assert.ok(!hub.requests.slice(from).some((r) => r.url.includes('/resolve/')));
  });
});

describe('the fake Hub speaks what @huggingface/hub expects', () => {
  test('pathsInfo and fileDownloadInfo answer as on the Hub (LFS oid, X-Linked-Size, X-Repo-Commit)', async () => {
    const { pathsInfo, fileDownloadInfo } = await import('@huggingface/hub');
    const repo = { type: 'model' as const, name: 'kiln-test/sst2' };
    const [info] = await pathsInfo({ repo, paths: ['onnx/model.onnx'], hubUrl: hub.url });
    assert.equal(info?.lfs?.oid, ONNX_SHA());
    assert.equal(info?.size, files['onnx/model.onnx']!.length);
    const download = await fileDownloadInfo({ repo, path: 'onnx/model.onnx', hubUrl: hub.url });
    assert.equal(download?.size, files['onnx/model.onnx']!.length);
    assert.equal(download?.etag, `"${ONNX_SHA()}"`);
    const head = await fetch(`${hub.url}/kiln-test/sst2/resolve/main/onnx/model.onnx`, {
      method: 'HEAD',
      redirect: 'manual',
    });
    assert.equal(head.status, 302);
    assert.equal(head.headers.get('x-repo-commit'), hub.commitOf('kiln-test/sst2'));
    assert.equal(head.headers.get('x-linked-etag'), `"${ONNX_SHA()}"`);
    assert.equal(head.headers.get('x-linked-size'), String(files['onnx/model.onnx']!.length));
    assert.equal(new URL(head.headers.get('location')!).origin, hub.cdnUrl);
  });
});
