/** Hub sources without a server: ids, unsafe paths, which files are chosen, and the HF_* settings. */
import assert from 'node:assert/strict';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isKilnError } from '../../src/core/errors.js';
import { type ListingEntry, unsafePathProblem } from '../../src/hub/cache-layout.js';
import { parseBareSource, parsePrefixedSource, repoFolderName, repoFromFolderName } from '../../src/hub/model-id.js';
import { selectFiles, shardsOf } from '../../src/hub/select-files.js';
import { hubSettings } from '../../src/hub/settings.js';

describe('parsePrefixedSource', () => {
  const valid: Array<[string, string, string]> = [
    ['hf:sentence-transformers/all-MiniLM-L6-v2', 'sentence-transformers/all-MiniLM-L6-v2', 'main'],
    ['hf:bert-base-uncased', 'bert-base-uncased', 'main'],
    ['hf:org/name@v1.0', 'org/name', 'v1.0'],
    ['hf:org/name@refs/pr/12', 'org/name', 'refs/pr/12'],
    ['hf:org/name@0123456789abcdef0123456789abcdef01234567', 'org/name', '0123456789abcdef0123456789abcdef01234567'],
  ];
  for (const [source, repo, revision] of valid)
    test(`parsePrefixedSource(${JSON.stringify(source)}) is ${repo} at ${revision}`, () => {
      assert.deepEqual(parsePrefixedSource(source), { repo, revision, given: source, prefixed: true });
    });

  const invalid = [
    'hf:',
    'hf:a/b/c',
    'hf:org/na--me',
    'hf:org/../x',
    'hf:org/name@',
    'hf:org/name@../../etc',
    'hf:org/name@a b',
    'hf:-org/x',
    'hf:org/name.',
  ];
  for (const source of invalid)
    test(`parsePrefixedSource(${JSON.stringify(source)}) throws KILN_ERR_HUB_INVALID_ID`, () => {
      assert.throws(
        () => parsePrefixedSource(source),
        (err: unknown) => isKilnError(err) && err.code === 'KILN_ERR_HUB_INVALID_ID',
      );
    });

  test('parsePrefixedSource of a path without hf: is null', () => {
    assert.equal(parsePrefixedSource('models/sst2-distilbert-tiny'), null);
  });
});

describe('parseBareSource', () => {
  const cases: Array<[string, boolean]> = [
    ['org/name', true],
    ['org/name@main', true],
    ['name', false],
    ['./org/name', false],
    ['/abs/org', false],
    ['a/b/c', false],
    ['missing/model.onnx', false],
    ['out/sentiment.kiln', false],
    ['data/dev.tsv', false],
  ];
  for (const [source, isHub] of cases)
    test(`parseBareSource(${JSON.stringify(source)}) ${isHub ? 'is' : 'is not'} a Hub id`, () => {
      assert.equal(parseBareSource(source) !== null, isHub);
    });
});

test('repoFolderName and repoFromFolderName are inverse, as Python names the folders', () => {
  assert.equal(repoFolderName('org/name'), 'models--org--name');
  assert.equal(repoFolderName('bert-base-uncased'), 'models--bert-base-uncased');
  assert.equal(repoFromFolderName('models--org--name'), 'org/name');
  assert.equal(repoFromFolderName('datasets--org--name'), null);
});

describe('unsafePathProblem', () => {
  const cases: Array<[string, boolean]> = [
    ['config.json', true],
    ['1_Pooling/config.json', true],
    ['../outside', false],
    ['a/../../b', false],
    ['/etc/passwd', false],
    ['C:\\Windows\\x', false],
    ['a\\..\\b', false],
    ['a//b', false],
    ['./a', false],
    ['a\u0000b', false],
  ];
  for (const [path, safe] of cases)
    test(`unsafePathProblem(${JSON.stringify(path)}) ${safe ? 'accepts' : 'refuses'} it`, () => {
      assert.equal(unsafePathProblem(path) === null, safe);
    });
});

function listing(paths: string[]): Map<string, ListingEntry> {
  return new Map(
    paths.map((path, i) => [
      path,
      { path, size: 10 + i, blobId: String(i).padStart(40, '0'), lfs: null, xetHash: null },
    ]),
  );
}
const ctx = { repo: 'org/name', commit: 'a'.repeat(40) };
const chosen = (l: Map<string, ListingEntry>, choice?: 'onnx' | 'safetensors'): string[] =>
  selectFiles(l, choice, ctx)
    .files.map((f) => f.path)
    .sort();

describe('selectFiles', () => {
  const full = listing([
    'README.md',
    '.gitattributes',
    'config.json',
    'tokenizer.json',
    'tokenizer_config.json',
    'special_tokens_map.json',
    'vocab.txt',
    'modules.json',
    'config_sentence_transformers.json',
    '1_Pooling/config.json',
    'onnx/model.onnx',
    'onnx/model.onnx_data',
    'onnx/model_quantized.onnx',
    'onnx/model_O4.onnx',
    'model.safetensors',
    'pytorch_model.bin',
    'tf_model.h5',
    'openvino/openvino_model.bin',
  ]);

  test('selectFiles takes the companions and onnx/model.onnx with its external data, nothing else', () => {
    assert.deepEqual(chosen(full), [
      '1_Pooling/config.json',
      'config.json',
      'config_sentence_transformers.json',
      'modules.json',
      'onnx/model.onnx',
      'onnx/model.onnx_data',
      'special_tokens_map.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
  });

  test("selectFiles(…, 'safetensors') takes model.safetensors instead of the graph", () => {
    const files = chosen(full, 'safetensors');
    assert.ok(files.includes('model.safetensors'));
    assert.ok(!files.some((f) => f.endsWith('.onnx') || f.endsWith('.onnx_data')));
  });

  test('selectFiles takes a sharded index, and shardsOf the shards it names', () => {
    const sharded = listing([
      'config.json',
      'model.safetensors.index.json',
      'model-1.safetensors',
      'model-2.safetensors',
    ]);
    const selection = selectFiles(sharded, undefined, ctx);
    assert.equal(selection.weights, 'safetensors-sharded');
    const shards = shardsOf(
      { weight_map: { a: 'model-2.safetensors', b: 'model-1.safetensors', c: 'model-1.safetensors' } },
      sharded,
      ctx,
    );
    assert.deepEqual(
      shards.map((s) => s.path),
      ['model-1.safetensors', 'model-2.safetensors'],
    );
    assert.throws(
      () => shardsOf({ weight_map: { a: 'model-3.safetensors' } }, sharded, ctx),
      (err: unknown) => isKilnError(err) && err.code === 'KILN_ERR_HUB_FILE_MISSING',
    );
  });

  test('selectFiles on a pickle-only repo throws KILN_ERR_HUB_NO_WEIGHTS naming the safetensors conversion', () => {
    assert.throws(
      () => selectFiles(listing(['config.json', 'pytorch_model.bin']), undefined, ctx),
      (err: unknown) =>
        isKilnError(err) &&
        err.code === 'KILN_ERR_HUB_NO_WEIGHTS' &&
        /found: pytorch_model\.bin/.test(err.message) &&
        /arbitrary code/.test(err.message) &&
        /safe_serialization=True/.test(err.message),
    );
  });
});

describe('hubSettings', () => {
  const home = homedir();
  const cases: Array<[string, NodeJS.ProcessEnv, { cacheDir: string; offline: boolean; endpoint: string }]> = [
    [
      'defaults',
      {},
      { cacheDir: join(home, '.cache', 'huggingface', 'hub'), offline: false, endpoint: 'https://huggingface.co' },
    ],
    ['HF_HOME', { HF_HOME: '/h' }, { cacheDir: '/h/hub', offline: false, endpoint: 'https://huggingface.co' }],
    [
      'XDG_CACHE_HOME',
      { XDG_CACHE_HOME: '/x' },
      { cacheDir: '/x/huggingface/hub', offline: false, endpoint: 'https://huggingface.co' },
    ],
    [
      'HF_HUB_CACHE beats HF_HOME',
      { HF_HOME: '/h', HF_HUB_CACHE: '/c' },
      { cacheDir: '/c', offline: false, endpoint: 'https://huggingface.co' },
    ],
    [
      'HF_HUB_OFFLINE=1, HF_ENDPOINT/',
      { HF_HOME: '/h', HF_HUB_OFFLINE: '1', HF_ENDPOINT: 'http://mirror:8080/' },
      { cacheDir: '/h/hub', offline: true, endpoint: 'http://mirror:8080' },
    ],
    [
      'HF_HUB_OFFLINE=true',
      { HF_HOME: '/h', HF_HUB_OFFLINE: 'true' },
      { cacheDir: '/h/hub', offline: true, endpoint: 'https://huggingface.co' },
    ],
    [
      'HF_HUB_OFFLINE=0',
      { HF_HOME: '/h', HF_HUB_OFFLINE: '0' },
      { cacheDir: '/h/hub', offline: false, endpoint: 'https://huggingface.co' },
    ],
  ];
  for (const [name, env, expected] of cases)
    test(`hubSettings reads ${name}`, async () => {
      const s = await hubSettings({}, { HF_TOKEN_PATH: '/nonexistent/token', ...env });
      assert.deepEqual({ cacheDir: s.cacheDir, offline: s.offline, endpoint: s.endpoint }, expected);
    });

  test('hubSettings: --token beats HF_TOKEN, which beats HUGGING_FACE_HUB_TOKEN; --offline forces offline', async () => {
    const env = { HF_TOKEN: 'hf_a', HUGGING_FACE_HUB_TOKEN: 'hf_b', HF_TOKEN_PATH: '/nonexistent/token' };
    assert.equal((await hubSettings({ token: 'hf_flag' }, env)).token, 'hf_flag');
    assert.equal((await hubSettings({}, env)).token, 'hf_a');
    assert.equal((await hubSettings({}, { ...env, HF_TOKEN: '' })).token, 'hf_b');
    assert.equal((await hubSettings({ offline: true }, env)).offline, true);
  });

  test('hubSettings refuses an HF_ENDPOINT that is not http(s) or carries credentials', async () => {
    for (const HF_ENDPOINT of ['ftp://mirror', 'https://user:secret@mirror'])
      await assert.rejects(
        hubSettings({}, { HF_ENDPOINT }),
        (err: unknown) =>
          isKilnError(err) && err.code === 'KILN_ERR_CLI_INVALID_FLAG' && !err.message.includes('secret'),
      );
  });
});
