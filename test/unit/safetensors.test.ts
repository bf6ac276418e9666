import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { type ErrorCode, isKilnError } from '../../src/core/errors.js';
import { Checkpoint, SafetensorsFile, type TensorToWrite, writeSafetensors } from '../../src/model/safetensors.js';
import { EMBEDDED_MODEL, randomFloats, tempDir } from '../fixtures/models.js';

/** A safetensors file byte by byte: `header` as JSON (or raw text), an optional lying length. */
function rawFile(header: object | string, data: Uint8Array | number = 0, headerLength?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.byteLength + body.byteLength);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(body, 8 + json.byteLength);
  return out;
}

async function fileWith(bytes: Uint8Array, name = 'model.safetensors'): Promise<string> {
  const path = join(await tempDir(), name);
  await writeFile(path, bytes);
  return path;
}

/** Asserts that `promise` rejects with kiln error `code`, whose params include `params`, and whose message matches `pattern`. */
async function rejectsWith(
  promise: Promise<unknown>,
  code: ErrorCode,
  params: Record<string, unknown> = {},
  pattern?: RegExp,
): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isKilnError(err), `expected a KilnError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const [key, value] of Object.entries(params))
      assert.deepEqual((err.params as Record<string, unknown>)[key], value, key);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

const f32 = (...values: number[]): Float32Array => Float32Array.from(values);

describe('writeSafetensors and SafetensorsFile', () => {
  test('writeSafetensors(F32) round-trips values exactly, with shapes, sizes and an 8-byte aligned data start', async () => {
    const path = join(await tempDir(), 'model.safetensors');
    const a = randomFloats(12, 1);
    const b = randomFloats(5, 2);
    await writeSafetensors(path, [
      { name: 'a', dtype: 'F32', shape: [3, 4], data: () => a },
      { name: 'b', dtype: 'F32', shape: [5], data: async () => b },
      { name: 'empty', dtype: 'F32', shape: [0, 4], data: () => new Float32Array(0) },
    ]);
    const bytes = await readFile(path);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    assert.equal((8 + headerLength) % 8, 0);
    assert.equal(bytes.byteLength, 8 + headerLength + 17 * 4);

    const file = await SafetensorsFile.open(path);
    try {
      assert.deepEqual(file.entries(), [
        { name: 'a', dtype: 'F32', shape: [3, 4], byteLength: 48, file: path },
        { name: 'b', dtype: 'F32', shape: [5], byteLength: 20, file: path },
        { name: 'empty', dtype: 'F32', shape: [0, 4], byteLength: 0, file: path },
      ]);
      assert.deepEqual(file.metadata, {});
      assert.deepEqual(await file.readFloat32('a'), a);
      assert.deepEqual(await file.readFloat32('b'), b);
      assert.deepEqual(await file.readFloat32('empty'), new Float32Array(0));
      const raw = await file.readRaw('b');
      assert.deepEqual(raw, new Uint8Array(bytes.subarray(8 + headerLength + 48, 8 + headerLength + 68)));
    } finally {
      await file.close();
    }
  });

  const lossy: Array<{ dtype: 'F16' | 'BF16'; bytes: number; relative: number; exact: number[] }> = [
    { dtype: 'F16', bytes: 2, relative: 2 ** -11, exact: [0, 1, -2, 0.5, 65504, 2 ** -24, 1 + 2 ** -10] },
    { dtype: 'BF16', bytes: 2, relative: 2 ** -8, exact: [0, 1, -2, 0.5, 256, 3, 1 + 2 ** -7, 2 ** -126] },
  ];
  for (const { dtype, bytes, relative, exact } of lossy) {
    test(`writeSafetensors(${dtype}) stores ${bytes} bytes a value within relative ${relative}, and representable values exactly`, async () => {
      const path = join(await tempDir(), 'model.safetensors');
      const values = randomFloats(1000, 7, 100);
      await writeSafetensors(path, [
        { name: 'random', dtype, shape: [10, 100], data: () => values },
        { name: 'exact', dtype, shape: [exact.length], data: () => Float32Array.from(exact) },
      ]);
      const file = await SafetensorsFile.open(path);
      try {
        assert.equal(file.entries()[0]!.byteLength, 1000 * bytes);
        assert.equal(file.entries()[0]!.dtype, dtype);
        const back = await file.readFloat32('random');
        assert.equal(back.length, 1000);
        for (let i = 0; i < values.length; i += 1) {
          const want = values[i]!;
          assert.ok(
            Math.abs(back[i]! - want) <= Math.abs(want) * relative + 2 ** -24,
            `${want} came back as ${back[i]}`,
          );
        }
        assert.deepEqual(Array.from(await file.readFloat32('exact')), exact);
      } finally {
        await file.close();
      }
    });
  }

  test('writeSafetensors(metadata) round-trips __metadata__', async () => {
    const path = join(await tempDir(), 'model.safetensors');
    const metadata = { format: 'pt', note: 'ünïcode ✓' };
    await writeSafetensors(path, [{ name: 'w', dtype: 'F32', shape: [1], data: () => f32(3) }], metadata);
    const file = await SafetensorsFile.open(path);
    assert.deepEqual(file.metadata, metadata);
    assert.deepEqual(
      file.entries().map((e) => e.name),
      ['w'],
    );
    await file.close();
  });

  test('SafetensorsFile.readFloat32 converts I64 and I32 tensors to float', async () => {
    const data = new Uint8Array(8 * 3 + 4 * 2);
    const view = new DataView(data.buffer);
    [-1n, 0n, 2n ** 40n].forEach((v, i) => {
      view.setBigInt64(i * 8, v, true);
    });
    [7, -9].forEach((v, i) => {
      view.setInt32(24 + i * 4, v, true);
    });
    const path = await fileWith(
      rawFile(
        {
          ids: { dtype: 'I64', shape: [3], data_offsets: [0, 24] },
          small: { dtype: 'I32', shape: [2], data_offsets: [24, 32] },
        },
        data,
      ),
    );
    const file = await SafetensorsFile.open(path);
    assert.deepEqual(Array.from(await file.readFloat32('ids')), [-1, 0, 2 ** 40]);
    assert.deepEqual(Array.from(await file.readFloat32('small')), [7, -9]);
    await file.close();
  });

  test('SafetensorsFile.open accepts a header padded with trailing spaces', async () => {
    const data = new Uint8Array(f32(1.5, -2.5).buffer);
    const path = await fileWith(
      rawFile(`${JSON.stringify({ t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } })}     `, data),
    );
    const file = await SafetensorsFile.open(path);
    assert.deepEqual(Array.from(await file.readFloat32('t')), [1.5, -2.5]);
    await file.close();
  });

  test('writeSafetensors asks for each tensor only after the previous one is on disk (one tensor in memory)', async () => {
    const path = join(await tempDir(), 'model.safetensors');
    const temporary = `${path}.tmp-${process.pid}`;
    const sizesSeen: number[] = [];
    const tensors: TensorToWrite[] = [0, 1, 2].map((i) => ({
      name: `t${i}`,
      dtype: 'F32',
      shape: [256],
      data: async () => {
        sizesSeen.push((await stat(temporary)).size);
        assert.equal(existsSync(path), false, 'the final path appears only when the file is complete');
        return randomFloats(256, i + 1);
      },
    }));
    await writeSafetensors(path, tensors);
    const headerEnd = sizesSeen[0]!;
    assert.deepEqual(sizesSeen, [headerEnd, headerEnd + 1024, headerEnd + 2048]);
    assert.equal((await stat(path)).size, headerEnd + 3072);
    assert.equal(existsSync(temporary), false);
  });

  test('writeSafetensors(a data() that throws) leaves neither the file nor its temporary', async () => {
    const dir = await tempDir();
    const path = join(dir, 'model.safetensors');
    await assert.rejects(
      writeSafetensors(path, [
        { name: 'ok', dtype: 'F32', shape: [2], data: () => f32(1, 2) },
        { name: 'bad', dtype: 'F32', shape: [2], data: () => Promise.reject(new Error('boom')) },
      ]),
      /boom/,
    );
    assert.deepEqual(await readdir(dir), []);
  });

  test('writeSafetensors(data with the wrong length for its shape) throws RangeError naming the tensor', async () => {
    const dir = await tempDir();
    await assert.rejects(
      writeSafetensors(join(dir, 'model.safetensors'), [
        { name: 'w', dtype: 'F16', shape: [2, 2], data: () => f32(1, 2, 3) },
      ]),
      (err: unknown) => err instanceof RangeError && /"w"/.test(err.message),
    );
    assert.deepEqual(await readdir(dir), []);
  });

  test('SafetensorsFile.open reads only the header: a 3 GiB (sparse) file opens without growing memory', async () => {
    const big = 3 * 2 ** 30;
    const tail = f32(1, 2, 3, 4);
    const json = JSON.stringify({
      big: { dtype: 'F32', shape: [big / 4], data_offsets: [0, big] },
      tail: { dtype: 'F32', shape: [4], data_offsets: [big, big + 16] },
    });
    const header = rawFile(json);
    const path = join(await tempDir(), 'model.safetensors');
    const fh = await open(path, 'w');
    await fh.write(header, 0, header.byteLength, 0);
    await fh.write(new Uint8Array(tail.buffer), 0, 16, header.byteLength + big);
    await fh.close();

    const before = process.memoryUsage().rss;
    const file = await SafetensorsFile.open(path);
    assert.deepEqual(Array.from(await file.readFloat32('tail')), [1, 2, 3, 4]);
    assert.equal(file.entries()[0]!.byteLength, big);
    const grown = process.memoryUsage().rss - before;
    assert.ok(grown < 64 * 2 ** 20, `memory grew by ${grown} bytes`);
    await file.close();
  });
});

describe('SafetensorsFile.open on bad files', () => {
  const tensor = (dtype: string, shape: number[], begin: number, end: number): object => ({
    dtype,
    shape,
    data_offsets: [begin, end],
  });
  const cases: Array<{
    name: string;
    bytes: () => Uint8Array;
    code: ErrorCode;
    params?: Record<string, unknown>;
    pattern?: RegExp;
  }> = [
    {
      name: 'a file of 5 bytes is truncated',
      bytes: () => new Uint8Array(5),
      code: 'KILN_ERR_WEIGHTS_TRUNCATED',
      params: { expected: 8, actual: 5 },
    },
    {
      name: 'header length 2^62 is invalid (and never allocated)',
      bytes: () => rawFile('{}', 0, 2n ** 62n),
      code: 'KILN_ERR_WEIGHTS_INVALID',
      pattern: /header length 4611686018427387904 runs past the end of the file \(size 10\)/,
    },
    {
      name: 'header length past the end of the file is invalid',
      bytes: () => rawFile('{"a": 1}', 4, 1000n),
      code: 'KILN_ERR_WEIGHTS_INVALID',
      pattern: /header length 1000 runs past the end of the file \(size 20\)/,
    },
    {
      name: 'a header that is not JSON is invalid',
      bytes: () => rawFile('this is not json'),
      code: 'KILN_ERR_WEIGHTS_INVALID',
      pattern: /not UTF-8 JSON/,
    },
    {
      name: 'a header that is a JSON array is invalid',
      bytes: () => rawFile('[1, 2]'),
      code: 'KILN_ERR_WEIGHTS_INVALID',
      pattern: /not a JSON object/,
    },
    {
      name: 'two tensors sharing bytes are invalid, naming both',
      bytes: () => rawFile({ first: tensor('F32', [4], 0, 16), second: tensor('F32', [2], 8, 16) }, 16),
      code: 'KILN_ERR_WEIGHTS_INVALID',
      pattern: /tensors "first" and "second" overlap/,
    },
    {
      name: 'offsets past the data are a truncated file',
      bytes: () => rawFile({ w: tensor('F32', [4], 0, 16) }, 12),
      code: 'KILN_ERR_WEIGHTS_TRUNCATED',
      pattern: /needs \d+ bytes, the file has \d+/,
    },
    {
      name: 'a shape whose size differs from the offsets is invalid, naming the tensor and both sizes',
      bytes: () => rawFile({ w: tensor('F32', [2, 3], 0, 16) }, 16),
      code: 'KILN_ERR_WEIGHTS_INVALID',
      pattern: /tensor "w" \(F32 \[2, 3\]\) needs 24 bytes, but its data_offsets \[0, 16\] hold 16/,
    },
    {
      name: 'a negative dimension is invalid',
      bytes: () => rawFile({ w: tensor('F32', [-1], 0, 4) }, 4),
      code: 'KILN_ERR_WEIGHTS_INVALID',
      pattern: /tensor "w" has shape \[-1\]/,
    },
    {
      name: 'offsets with begin > end are invalid',
      bytes: () => rawFile({ w: tensor('F32', [1], 8, 4) }, 8),
      code: 'KILN_ERR_WEIGHTS_INVALID',
      pattern: /tensor "w" has data_offsets \[8,4\]/,
    },
    {
      name: 'an entry without dtype is invalid',
      bytes: () => rawFile({ w: { shape: [1], data_offsets: [0, 4] } }, 4),
      code: 'KILN_ERR_WEIGHTS_INVALID',
      pattern: /tensor "w" has no dtype/,
    },
    {
      name: 'a non-string __metadata__ value is invalid',
      bytes: () => rawFile({ __metadata__: { format: 1 } }),
      code: 'KILN_ERR_WEIGHTS_INVALID',
      pattern: /__metadata__/,
    },
    {
      name: 'dtype F8_E4M3 is not read',
      bytes: () => rawFile({ w: tensor('F8_E4M3', [4], 0, 4) }, 4),
      code: 'KILN_ERR_WEIGHTS_DTYPE',
      params: { tensor: 'w', dtype: 'F8_E4M3', supported: 'F32, F16, BF16, I64, I32' },
    },
    {
      name: 'dtype XYZ is not read',
      bytes: () => rawFile({ w: tensor('XYZ', [4], 0, 4) }, 4),
      code: 'KILN_ERR_WEIGHTS_DTYPE',
      params: { tensor: 'w', dtype: 'XYZ' },
    },
  ];
  for (const { name, bytes, code, params, pattern } of cases) {
    test(`SafetensorsFile.open(${name}) → ${code}`, async () => {
      const path = await fileWith(bytes());
      await rejectsWith(SafetensorsFile.open(path), code, { path, ...params }, pattern);
    });
  }

  test('SafetensorsFile.open(offsets past the data) reports expected = 8 + N + end and the file size', async () => {
    const bytes = rawFile({ w: tensor('F32', [4], 0, 16) }, 12);
    const n = bytes.byteLength - 8 - 12;
    const path = await fileWith(bytes);
    await rejectsWith(SafetensorsFile.open(path), 'KILN_ERR_WEIGHTS_TRUNCATED', {
      expected: 8 + n + 16,
      actual: bytes.byteLength,
    });
  });

  test('SafetensorsFile.open(a valid file cut in its data) → KILN_ERR_WEIGHTS_TRUNCATED with both sizes', async () => {
    const dir = await tempDir();
    const whole = join(dir, 'whole.safetensors');
    await writeSafetensors(whole, [
      { name: 'a', dtype: 'F32', shape: [64], data: () => randomFloats(64, 1) },
      { name: 'b', dtype: 'BF16', shape: [64], data: () => randomFloats(64, 2) },
    ]);
    const bytes = await readFile(whole);
    const cut = join(dir, 'cut.safetensors');
    await writeFile(cut, bytes.subarray(0, bytes.byteLength - 100));
    await rejectsWith(SafetensorsFile.open(cut), 'KILN_ERR_WEIGHTS_TRUNCATED', {
      path: cut,
      expected: bytes.byteLength,
      actual: bytes.byteLength - 100,
    });
  });

  test('SafetensorsFile.open(header length over 100 MiB) → KILN_ERR_WEIGHTS_INVALID', async () => {
    const n = 100 * 2 ** 20 + 1;
    const path = join(await tempDir(), 'model.safetensors');
    const fh = await open(path, 'w');
    const prefix = new Uint8Array(8);
    new DataView(prefix.buffer).setBigUint64(0, BigInt(n), true);
    await fh.write(prefix);
    await fh.truncate(8 + n + 8); // sparse: the size is there, the bytes are not
    await fh.close();
    await rejectsWith(SafetensorsFile.open(path), 'KILN_ERR_WEIGHTS_INVALID', {}, /over the 104857600-byte limit/);
  });

  test('SafetensorsFile.open(a missing path) → KILN_ERR_SOURCE_NOT_FOUND', async () => {
    const path = join(await tempDir(), 'nope.safetensors');
    await rejectsWith(SafetensorsFile.open(path), 'KILN_ERR_SOURCE_NOT_FOUND', { path });
  });
});

describe('Checkpoint', () => {
  async function twoShards(): Promise<{ dir: string; a: Float32Array; b: Float32Array; c: Float32Array }> {
    const dir = await tempDir();
    const a = randomFloats(6, 1);
    const b = randomFloats(4, 2);
    const c = randomFloats(3, 3);
    await writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), [
      { name: 'layer.0.weight', dtype: 'F32', shape: [2, 3], data: () => a },
      { name: 'layer.0.bias', dtype: 'F32', shape: [4], data: () => b },
    ]);
    await writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), [
      { name: 'layer.1.weight', dtype: 'F32', shape: [3], data: () => c },
    ]);
    await writeFile(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({
        metadata: { total_size: 52 },
        weight_map: {
          'layer.0.weight': 'model-00001-of-00002.safetensors',
          'layer.0.bias': 'model-00001-of-00002.safetensors',
          'layer.1.weight': 'model-00002-of-00002.safetensors',
        },
      }),
    );
    return { dir, a, b, c };
  }

  test('Checkpoint.open(a sharded folder) reads tensors from both shards', async () => {
    const { dir, a, b, c } = await twoShards();
    const ckpt = await Checkpoint.open(dir);
    try {
      assert.deepEqual(ckpt.names().sort(), ['layer.0.bias', 'layer.0.weight', 'layer.1.weight']);
      assert.equal(ckpt.totalBytes(), (6 + 4 + 3) * 4);
      assert.equal(ckpt.has('layer.1.weight'), true);
      assert.equal(ckpt.has('layer.2.weight'), false);
      assert.equal(ckpt.entry('layer.2.weight'), undefined);
      assert.deepEqual(ckpt.entry('layer.1.weight'), {
        name: 'layer.1.weight',
        dtype: 'F32',
        shape: [3],
        byteLength: 12,
        file: join(dir, 'model-00002-of-00002.safetensors'),
      });
      assert.deepEqual(await ckpt.read('layer.0.weight', { architecture: 'Test', shape: [2, 3] }), a);
      assert.deepEqual(await ckpt.read('layer.0.bias', { architecture: 'Test' }), b);
      assert.deepEqual(await ckpt.read('layer.1.weight', { architecture: 'Test', shape: [3] }), c);
    } finally {
      await ckpt.close();
    }
  });

  test('Checkpoint.open(an index naming a missing shard) → KILN_ERR_SOURCE_MISSING_FILE naming it', async () => {
    const { dir } = await twoShards();
    const index = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8'));
    index.weight_map['layer.2.weight'] = 'model-00003-of-00003.safetensors';
    await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
    await rejectsWith(Checkpoint.open(dir), 'KILN_ERR_SOURCE_MISSING_FILE', {
      path: dir,
      file: 'model-00003-of-00003.safetensors',
    });
  });

  test('Checkpoint.open(an index mapping a tensor to a shard that lacks it) → KILN_ERR_WEIGHTS_INVALID', async () => {
    const { dir } = await twoShards();
    const index = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8'));
    index.weight_map['layer.0.bias'] = 'model-00002-of-00002.safetensors';
    await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
    await rejectsWith(
      Checkpoint.open(dir),
      'KILN_ERR_WEIGHTS_INVALID',
      {},
      /"layer\.0\.bias" to "model-00002-of-00002\.safetensors", which has no such tensor/,
    );
  });

  test('Checkpoint.open(an index whose shard path leaves the folder) → KILN_ERR_WEIGHTS_INVALID', async () => {
    const dir = await tempDir();
    await writeFile(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ weight_map: { w: '../elsewhere.safetensors' } }),
    );
    await rejectsWith(Checkpoint.open(dir), 'KILN_ERR_WEIGHTS_INVALID', {}, /not a file name in the folder/);
  });

  test('Checkpoint.open(an index that is not JSON) → KILN_ERR_WEIGHTS_INVALID', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'model.safetensors.index.json'), '{ nope');
    await rejectsWith(Checkpoint.open(dir), 'KILN_ERR_WEIGHTS_INVALID', {
      path: join(dir, 'model.safetensors.index.json'),
    });
  });

  test('Checkpoint.open(a folder without weights) → KILN_ERR_SOURCE_MISSING_FILE', async () => {
    const dir = await tempDir();
    await rejectsWith(Checkpoint.open(dir), 'KILN_ERR_SOURCE_MISSING_FILE', {
      path: dir,
      file: 'model.safetensors or model.safetensors.index.json',
      purpose: 'the weights',
    });
  });

  test('Checkpoint.open(a missing folder) → KILN_ERR_SOURCE_NOT_FOUND', async () => {
    const dir = join(await tempDir(), 'absent');
    await rejectsWith(Checkpoint.open(dir), 'KILN_ERR_SOURCE_NOT_FOUND', { path: dir });
  });

  test('Checkpoint.read(a tensor not in the checkpoint) → KILN_ERR_WEIGHTS_MISSING_TENSOR', async () => {
    const { dir } = await twoShards();
    const ckpt = await Checkpoint.open(dir);
    await rejectsWith(
      ckpt.read('classifier.weight', { architecture: 'DistilBertForSequenceClassification' }),
      'KILN_ERR_WEIGHTS_MISSING_TENSOR',
      {
        path: dir,
        tensor: 'classifier.weight',
        architecture: 'DistilBertForSequenceClassification',
      },
    );
    await ckpt.close();
  });

  test('Checkpoint.read(a tensor of another shape) → KILN_ERR_WEIGHTS_SHAPE with both shapes', async () => {
    const { dir } = await twoShards();
    const ckpt = await Checkpoint.open(dir);
    await rejectsWith(ckpt.read('layer.0.weight', { architecture: 'Test', shape: [3, 2] }), 'KILN_ERR_WEIGHTS_SHAPE', {
      tensor: 'layer.0.weight',
      expected: '[3, 2]',
      actual: '[2, 3]',
    });
    await rejectsWith(ckpt.read('layer.1.weight', { architecture: 'Test', shape: [3, 1] }), 'KILN_ERR_WEIGHTS_SHAPE', {
      expected: '[3, 1]',
      actual: '[3]',
    });
    await ckpt.close();
  });

  test('Checkpoint.open(the embedded model) lists its 72 tensors and reads them', async () => {
    const ckpt = await Checkpoint.open(EMBEDDED_MODEL);
    try {
      const names = ckpt.names();
      assert.equal(names.length, 72); // 73 header keys, one of them __metadata__
      assert.ok(!names.includes('__metadata__'));
      assert.deepEqual(ckpt.entry('distilbert.embeddings.word_embeddings.weight')?.shape, [30522, 128]);
      const path = join(EMBEDDED_MODEL, 'model.safetensors');
      const bytes = await readFile(path);
      const headerLength = Number(bytes.readBigUInt64LE(0));
      assert.equal(ckpt.totalBytes(), bytes.byteLength - 8 - headerLength);

      const file = await SafetensorsFile.open(path);
      assert.deepEqual(file.metadata, { format: 'pt' });
      const first = file.entries()[0]!;
      await file.close();
      const values = await ckpt.read(first.name, {
        architecture: 'DistilBertForSequenceClassification',
        shape: first.shape,
      });
      const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
      const [begin, end] = header[first.name].data_offsets as [number, number];
      const expected = new Float32Array(
        bytes.buffer.slice(bytes.byteOffset + 8 + headerLength + begin, bytes.byteOffset + 8 + headerLength + end),
      );
      assert.deepEqual(values, expected);
    } finally {
      await ckpt.close();
    }
  });
});
