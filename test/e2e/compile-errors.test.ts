/**
 * Every bad input a user can hand to `kiln compile` or `kiln run` ends in one line on stderr
 * with its stable code, exit status 1, no stack trace, and no artifact left behind.
 */
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { pathKind } from '../../src/core/fs.js';
import {
  EMBEDDED_MODEL,
  errorCode,
  kiln,
  SHARED_CACHE_ENV,
  sourceFolder,
  tempDir,
  tinyClassifier,
} from '../fixtures/models.js';

let dir: string;
let env: NodeJS.ProcessEnv;

before(async () => {
  dir = await tempDir();
  env = { KILN_CACHE_DIR: join(dir, 'cache') };
});

async function expectCompileError(source: string, code: string, extra: string[] = []): Promise<string> {
  const out = join(dir, `out-${Math.random().toString(36).slice(2)}.kiln`);
  const result = await kiln(['compile', source, '-o', out, ...extra], { env });
  assert.equal(result.code, 1, `expected failure, got: ${result.stdout}${result.stderr}`);
  assert.equal(errorCode(result.stderr), code, result.stderr);
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace without KILN_DEBUG=1');
  assert.equal(result.stdout, '');
  assert.equal(await pathKind(out), 'missing', 'a failed compile leaves no artifact');
  return result.stderr;
}

describe('kiln compile rejects bad sources with coded errors', () => {
  test('a path that does not exist → KILN_ERR_SOURCE_NOT_FOUND', async () => {
    const stderr = await expectCompileError(join(dir, 'nope'), 'KILN_ERR_SOURCE_NOT_FOUND');
    assert.match(stderr, /nope/);
  });

  test('a folder without tokenizer.json → KILN_ERR_SOURCE_MISSING_FILE naming the file', async () => {
    const stderr = await expectCompileError(
      await sourceFolder(dir, 'no-tokenizer', { tokenizer: false }),
      'KILN_ERR_SOURCE_MISSING_FILE',
    );
    assert.match(stderr, /tokenizer\.json/);
  });

  test('a folder without config.json → KILN_ERR_SOURCE_MISSING_FILE naming the file', async () => {
    const stderr = await expectCompileError(
      await sourceFolder(dir, 'no-config', { config: null }),
      'KILN_ERR_SOURCE_MISSING_FILE',
    );
    assert.match(stderr, /config\.json/);
  });

  test('a text file named model.onnx → KILN_ERR_ONNX_NOT_ONNX', async () => {
    const source = await sourceFolder(dir, 'not-onnx', {
      onnx: new TextEncoder().encode('this is not a protobuf, just text\n'.repeat(20)),
    });
    await expectCompileError(source, 'KILN_ERR_ONNX_NOT_ONNX');
  });

  test('a model.onnx cut short, as by an interrupted download → KILN_ERR_ONNX_TRUNCATED', async () => {
    const full = await readFile(join(EMBEDDED_MODEL, 'onnx', 'model.onnx'));
    const source = await sourceFolder(dir, 'truncated', { onnx: full.subarray(0, Math.floor(full.length * 0.6)) });
    const stderr = await expectCompileError(source, 'KILN_ERR_ONNX_TRUNCATED');
    assert.match(stderr, /truncated/);
  });

  test('a node in a custom domain → KILN_ERR_OP_UNSUPPORTED listing op type, domain, count and node names', async () => {
    const onnx = tinyClassifier({
      extra: (g, pooled) => {
        let x = pooled;
        for (let i = 0; i < 7; i += 1)
          x = g.op('FancyNorm', [x], undefined, { domain: 'ai.custom', name: `/encoder/layer.${i}/FancyNorm` });
        return x;
      },
      opsets: { '': 17, 'ai.custom': 1 },
    });
    const stderr = await expectCompileError(await sourceFolder(dir, 'custom-op', { onnx }), 'KILN_ERR_OP_UNSUPPORTED');
    assert.match(
      stderr,
      /FancyNorm \(domain "ai\.custom", 7 nodes: "\/encoder\/layer\.0\/FancyNorm", .*"\/encoder\/layer\.4\/FancyNorm", and 2 more\)/,
    );
    assert.doesNotMatch(stderr, /layer\.5/, 'at most five node names are listed');
  });

  test('inputs named other than the tokenizer produces → KILN_ERR_MODEL_INPUTS', async () => {
    const onnx = tinyClassifier({ inputNames: ['tokens', 'attention_mask'] });
    const stderr = await expectCompileError(await sourceFolder(dir, 'bad-inputs', { onnx }), 'KILN_ERR_MODEL_INPUTS');
    assert.match(stderr, /"tokens"/);
  });

  test('three logits for two labels in config.json → KILN_ERR_MODEL_OUTPUTS', async () => {
    const stderr = await expectCompileError(
      await sourceFolder(dir, 'bad-outputs', { onnx: tinyClassifier({ classes: 3 }) }),
      'KILN_ERR_MODEL_OUTPUTS',
    );
    assert.match(stderr, /3 classes/);
  });

  test('three logits behind a symbolic output dimension are caught by the test inference', async () => {
    const onnx = tinyClassifier({ classes: 3, declaredClasses: 'classes' });
    await expectCompileError(await sourceFolder(dir, 'bad-outputs-symbolic', { onnx }), 'KILN_ERR_MODEL_OUTPUTS');
  });

  test('a tokenizer with more ids than the embedding has rows → KILN_ERR_TOKENIZER_MISMATCH', async () => {
    const source = await sourceFolder(dir, 'small-vocab', {
      onnx: tinyClassifier({ vocab: 100 }),
      config: { id2label: { 0: 'NEGATIVE', 1: 'POSITIVE' }, vocab_size: 100 },
    });
    const stderr = await expectCompileError(source, 'KILN_ERR_TOKENIZER_MISMATCH');
    assert.match(stderr, /ids up to 30521, but the model's embedding table has 100 rows/);
  });

  test('config.json without id2label → KILN_ERR_CONFIG_INVALID', async () => {
    const stderr = await expectCompileError(
      await sourceFolder(dir, 'no-labels', { config: { model_type: 'bert' } }),
      'KILN_ERR_CONFIG_INVALID',
    );
    assert.match(stderr, /id2label/);
  });

  test('bad flag values → KILN_ERR_CLI_INVALID_FLAG naming flag, rule and value', async () => {
    const source = await sourceFolder(dir, 'flags');
    assert.match(
      await expectCompileError(source, 'KILN_ERR_CLI_INVALID_FLAG', ['--max-batch', '0']),
      /--max-batch must be an integer in \[1, 1024\], got "0"/,
    );
    assert.match(
      await expectCompileError(source, 'KILN_ERR_CLI_INVALID_FLAG', ['--max-length', 'ten']),
      /--max-length .* got "ten"/,
    );
    // 600 is a valid integer, but beyond the 512 positions config.json declares.
    assert.match(
      await expectCompileError(source, 'KILN_ERR_CLI_INVALID_FLAG', ['--max-length', '600']),
      /\[2, 512\].*position embeddings.*got "600"/,
    );
  });

  test('KILN_DEBUG=1 adds the stack trace', async () => {
    const result = await kiln(['compile', join(dir, 'nope')], { env: { ...env, KILN_DEBUG: '1' } });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /KILN_ERR_SOURCE_NOT_FOUND|no model at/);
    assert.match(result.stderr, /\n\s+at /);
  });
});

describe('kiln refuses a corrupted artifact', () => {
  test('one flipped byte in model.onnx → KILN_ERR_ARTIFACT_CORRUPT, before anything runs', async () => {
    const artifact = join(dir, 'corrupt.kiln');
    const compiled = await kiln(['compile', await sourceFolder(dir, 'to-corrupt'), '-o', artifact], { env });
    assert.equal(compiled.code, 0, compiled.stderr);
    const path = join(artifact, 'model.onnx');
    const bytes = await readFile(path);
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
    await writeFile(path, bytes);
    const result = await kiln(['run', artifact, 'hello'], { env });
    assert.equal(result.code, 1);
    assert.equal(errorCode(result.stderr), 'KILN_ERR_ARTIFACT_CORRUPT');
    assert.match(result.stderr, /model\.onnx has SHA-256/);
    assert.equal(result.stdout, '');
  });

  test('a manifest that is not JSON → KILN_ERR_ARTIFACT_INVALID', async () => {
    const artifact = join(dir, 'bad-manifest.kiln');
    await cp(join(dir, 'corrupt.kiln'), artifact, { recursive: true });
    await writeFile(join(artifact, 'manifest.json'), '{"format": "kiln-artifact", ');
    const result = await kiln(['run', artifact, 'hello'], { env });
    assert.equal(errorCode(result.stderr), 'KILN_ERR_ARTIFACT_INVALID');
  });
});

describe('kiln run rejects bad texts', () => {
  test('an empty or whitespace-only text → KILN_ERR_INPUT_EMPTY_TEXT naming it', async () => {
    const result = await kiln(['run', EMBEDDED_MODEL, 'fine text', '   '], { env: SHARED_CACHE_ENV });
    assert.equal(errorCode(result.stderr), 'KILN_ERR_INPUT_EMPTY_TEXT');
    assert.match(result.stderr, /TEXT argument 2/);
  });

  test('a blank line in --file → KILN_ERR_INPUT_EMPTY_TEXT naming the line', async () => {
    const file = join(dir, 'texts.txt');
    await writeFile(file, 'good one\n\nanother\n');
    const result = await kiln(['run', EMBEDDED_MODEL, '--file', file], { env: SHARED_CACHE_ENV });
    assert.equal(errorCode(result.stderr), 'KILN_ERR_INPUT_EMPTY_TEXT');
    assert.match(result.stderr, /line 2 of/);
  });

  test('--file that does not exist → KILN_ERR_INPUT_FILE_NOT_FOUND; no texts at all → KILN_ERR_INPUT_NO_TEXTS', async () => {
    assert.equal(
      errorCode(
        (await kiln(['run', EMBEDDED_MODEL, '--file', join(dir, 'missing.txt')], { env: SHARED_CACHE_ENV })).stderr,
      ),
      'KILN_ERR_INPUT_FILE_NOT_FOUND',
    );
    assert.equal(
      errorCode((await kiln(['run', EMBEDDED_MODEL], { env: SHARED_CACHE_ENV })).stderr),
      'KILN_ERR_INPUT_NO_TEXTS',
    );
  });
});
