/** convertToFp16: MatMul/Gemm and embedding tables in fp16, the fragile parts fp32, the answers close to PyTorch's. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { convertToFp16 } from '../../src/compiler/fp16.js';
import { TextTokenizer } from '../../src/model/tokenizer.js';
import { decodeModel, encodeModel, onnx } from '../../src/onnx/proto.js';
import { createSession } from '../../src/runtime/binding.js';
import { EMBEDDED_MODEL } from '../fixtures/models.js';

const FLOAT16 = onnx.TensorProto.DataType.FLOAT16;

test('convertToFp16 on the embedded model: every MatMul reads fp16, LayerNorm and Softmax read fp32, and the logits stay within 0.02 of PyTorch', async () => {
  const path = join(EMBEDDED_MODEL, 'onnx', 'model.onnx');
  const source = decodeModel(await readFile(path), path);
  const { model, report } = convertToFp16(source);
  const graph = model.graph!;
  const fp16Tensors = new Set((graph.initializer ?? []).filter((t) => t.dataType === FLOAT16).map((t) => t.name));
  const castTo16 = new Set(
    (graph.node ?? []).filter((n) => n.opType === 'Cast' && n.attribute?.[0]?.i === FLOAT16).map((n) => n.output![0]),
  );
  const matmuls = (graph.node ?? []).filter((n) => n.opType === 'MatMul' || n.opType === 'Gemm');
  assert.equal(report.matmuls, matmuls.length);
  assert.ok(matmuls.length >= 30);
  for (const node of matmuls)
    for (const input of node.input ?? [])
      assert.ok(fp16Tensors.has(input) || castTo16.has(input), `${node.name} reads ${input} in fp16`);
  for (const node of (graph.node ?? []).filter((n) => /LayerNorm|Softmax|Erf/.test(n.opType ?? '')))
    for (const input of node.input ?? [])
      assert.ok(!castTo16.has(input) && !fp16Tensors.has(input), `${node.name} stays fp32`);
  assert.deepEqual(
    graph.input?.map((i) => i.name),
    source.graph?.input?.map((i) => i.name),
  );
  assert.equal(report.gathers, 2, 'word and position embedding tables');

  const dir = await mkdtemp(join(tmpdir(), 'kiln-fp16-'));
  await writeFile(join(dir, 'model.onnx'), encodeModel(model));
  const reference = JSON.parse(await readFile(join(EMBEDDED_MODEL, 'reference-logits.json'), 'utf8')) as {
    sentences: string[];
    logits: number[][];
  };
  const tokenizer = new TextTokenizer(
    JSON.parse(await readFile(join(EMBEDDED_MODEL, 'tokenizer.json'), 'utf8')),
    JSON.parse(await readFile(join(EMBEDDED_MODEL, 'tokenizer_config.json'), 'utf8')),
    'tokenizer.json',
  );
  const session = await createSession(join(dir, 'model.onnx'), { backend: 'cpu', optimization: 'all' });
  try {
    for (let i = 0; i < 8; i += 1) {
      const ids = tokenizer.encode(reference.sentences[i]!, 128).ids;
      const feeds = {
        input_ids: { type: 'int64' as const, data: BigInt64Array.from(ids, BigInt), dims: [1, ids.length] },
        attention_mask: { type: 'int64' as const, data: new BigInt64Array(ids.length).fill(1n), dims: [1, ids.length] },
      };
      const logits = (await session.run(feeds)).logits!.data;
      for (const [j, v] of reference.logits[i]!.entries())
        assert.ok(Math.abs(logits[j]! - v) < 0.02, `sentence ${i} logit ${j}: fp16 ${logits[j]}, PyTorch ${v}`);
    }
  } finally {
    await session.release();
  }
});
