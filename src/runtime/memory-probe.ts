/**
 * Run as a child process by compile: loads one replica's session the way a worker does, runs
 * one batch at max batch × max length, and prints the process's resident memory before and
 * after, as JSON on stdout. A fresh process, so nothing else kiln holds is counted.
 * It also measures the tokenizer, which a process holds once whatever the number of replicas.
 *   node memory-probe.js MODEL_PATH INPUTS_JSON BATCH LENGTH TOKENIZER_JSON [TOKENIZER_CONFIG_JSON]
 *   node memory-probe.js MODEL_PATH INPUTS_JSON BATCH 1 --image C,H,W   (an image model: one float input)
 */
import { readFile } from 'node:fs/promises';
import type { InputTensor } from '../core/tensor.js';
import { TextTokenizer } from '../model/tokenizer.js';
import { createSession } from './binding.js';

const [modelPath, inputsJson, batchArg, lengthArg, tokenizerPath, tokenizerConfigPath] = process.argv.slice(2);
const inputs = JSON.parse(inputsJson!) as Array<{ name: string; type: string }>;
const batch = Number(batchArg);
const length = Number(lengthArg);

const rss = (): number => process.memoryUsage().rss;
const start = rss();
const image = tokenizerPath === '--image' ? tokenizerConfigPath!.split(',').map(Number) : null;
// Token id 1000, or the last one of a smaller vocabulary (compile checked it fits the embedding table).
let tokenId = 1000;
if (!image) {
  const tokenizer = new TextTokenizer(
    JSON.parse(await readFile(tokenizerPath!, 'utf8')),
    tokenizerConfigPath ? JSON.parse(await readFile(tokenizerConfigPath, 'utf8')) : {},
    tokenizerPath!,
  );
  tokenizer.encode('warm the tokenizer up', 16);
  tokenId = Math.min(tokenId, tokenizer.vocabSize - 1);
}
const before = rss();
const session = await createSession(modelPath!, { backend: 'cpu', optimization: 'disabled', intraOpThreads: 1 });
const loaded = rss();
const feeds: Record<string, InputTensor> = {};
if (image) {
  const size = image.reduce((a, b) => a * b, 1);
  // Mid-grey everywhere: the activations' size, not their values, is what is measured.
  feeds[inputs[0]!.name] = { type: 'float32', data: new Float32Array(batch * size).fill(0.5), dims: [batch, ...image] };
}
for (const input of image ? [] : inputs) {
  const count = batch * length;
  // One real token id everywhere: the activations' size, not their values, is measured; mask 1: full attention.
  const value = input.name === 'input_ids' ? tokenId : input.name === 'attention_mask' ? 1 : 0;
  feeds[input.name] =
    input.type === 'int32'
      ? { type: 'int32', data: new Int32Array(count).fill(value), dims: [batch, length] }
      : { type: 'int64', data: new BigInt64Array(count).fill(BigInt(value)), dims: [batch, length] };
}
await session.run(feeds);
const ran = rss();
await session.release();
process.stdout.write(`${JSON.stringify({ start, before, loaded, ran })}\n`);
