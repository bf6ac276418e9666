/**
 * Reading KServe v2 (Open Inference Protocol) input tensors, for the task modules' KServe hooks:
 * texts as one BYTES input, token rows a client made itself (INT64/INT32 `input_ids` and
 * `attention_mask`), images as base64 BYTES or preprocessed FP32 tensors.
 */
import { KilnError } from '../core/errors.js';
import type { ImagePreprocessing } from '../model/image.js';
import { checkTexts, MAX_TEXTS_PER_REQUEST, type RequestLimits } from './limits.js';
import { decodeBase64 } from './route.js';

const fail = (err: KilnError): never => {
  throw err;
};

/** Datatypes of token id tensors: a client that tokenized itself. */
const TOKEN_DATATYPES = new Set(['INT64', 'INT32', 'UINT64', 'UINT32', 'INT16', 'INT8']);
const TOKEN_INPUTS = new Set(['input_ids', 'attention_mask', 'token_type_ids']);

export interface TensorInput {
  name: string;
  shape: number[];
  datatype: string;
  parameters?: Record<string, unknown>;
  data: unknown[];
}

/** KServe's 400 (KILN_ERR_HTTP_V2_INVALID_REQUEST). */
export const invalid = (problem: string): KilnError => new KilnError('KILN_ERR_HTTP_V2_INVALID_REQUEST', { problem });

/** The request's texts, or its token rows when the client tokenized (INT64/INT32 tensors). */
export type TokenRequest =
  | { kind: 'texts'; texts: string[]; shape: number[] }
  | { kind: 'tokens'; rows: Array<{ ids: number[]; typeIds?: number[] }> };

export function readRequest(inputs: readonly TensorInput[]): TokenRequest {
  if (inputs.some((i) => TOKEN_INPUTS.has(i.name) || TOKEN_DATATYPES.has(i.datatype)))
    return { kind: 'tokens', rows: readTokens(inputs) };
  return { kind: 'texts', ...readTexts(inputs) };
}

/** The texts of the request's one BYTES input: shape [n] or [n, 1], data flat or nested. */
function readTexts(inputs: readonly TensorInput[]): { texts: string[]; shape: number[] } {
  if (inputs.length !== 1)
    throw invalid(
      `the model takes one input, "text", but the request has ${inputs.length}: ${inputs.map((i) => JSON.stringify(i.name)).join(', ')}`,
    );
  const input = inputs[0]!;
  if (input.datatype !== 'BYTES')
    throw invalid(`input "${input.name}" has datatype ${JSON.stringify(input.datatype)}; the text input is BYTES`);
  const { shape } = input;
  if (!(shape.length === 1 || (shape.length === 2 && shape[1] === 1)) || shape[0] === 0) {
    throw invalid(
      `input "${input.name}" has shape ${JSON.stringify(shape)}; texts take shape [n] or [n, 1] with n ≥ 1`,
    );
  }
  const n = shape[0]!;
  if (n > MAX_TEXTS_PER_REQUEST)
    throw new KilnError('KILN_ERR_HTTP_TOO_MANY_TEXTS', { count: n, limit: MAX_TEXTS_PER_REQUEST });
  // The protocol allows the data flattened (row-major) or nested as the shape.
  const data = input.data.flat();
  if (data.length !== n)
    throw invalid(
      `input "${input.name}" has shape ${JSON.stringify(shape)} (${n} elements) but ${data.length} data elements`,
    );
  const bad = data.findIndex((t) => typeof t !== 'string');
  if (bad >= 0) throw invalid(`element ${bad} of input "${input.name}" is ${JSON.stringify(data[bad])}, not a string`);
  return { texts: data as string[], shape };
}

/**
 * Token rows from `input_ids` and `attention_mask` [batch, sequence] (optionally
 * `token_type_ids`), integer datatypes: each row keeps the tokens its mask marks, which must
 * come first (padding at the end, as tokenizers pad).
 */
function readTokens(inputs: readonly TensorInput[]): Array<{ ids: number[]; typeIds?: number[] }> {
  const byName = new Map(inputs.map((i) => [i.name, i]));
  const unknown = inputs.find((i) => !TOKEN_INPUTS.has(i.name));
  if (unknown)
    throw invalid(
      `input ${JSON.stringify(unknown.name)} is not a token input; token inputs are ${[...TOKEN_INPUTS].join(', ')}`,
    );
  const ids = byName.get('input_ids');
  const mask = byName.get('attention_mask');
  if (!ids || !mask) throw invalid('token inputs need both "input_ids" and "attention_mask"');
  const tensors = [ids, mask, byName.get('token_type_ids')].filter((t): t is TensorInput => t !== undefined);
  const shape = ids.shape;
  for (const t of tensors) {
    if (!TOKEN_DATATYPES.has(t.datatype))
      throw invalid(`input "${t.name}" has datatype ${JSON.stringify(t.datatype)}; token inputs are INT64 or INT32`);
    if (t.shape.length !== 2 || t.shape[0] !== shape[0] || t.shape[1] !== shape[1] || shape.length !== 2) {
      throw invalid(
        `input "${t.name}" has shape ${JSON.stringify(t.shape)}; token inputs share one shape [batch, sequence]`,
      );
    }
  }
  const [batch, sequence] = shape as [number, number];
  if (batch === 0 || batch > MAX_TEXTS_PER_REQUEST)
    throw new KilnError('KILN_ERR_HTTP_TOO_MANY_TEXTS', { count: batch, limit: MAX_TEXTS_PER_REQUEST });
  const flat = (t: TensorInput): unknown[] => {
    const data = t.data.flat(2);
    if (data.length !== batch * sequence)
      throw invalid(
        `input "${t.name}" has shape ${JSON.stringify(t.shape)} (${batch * sequence} elements) but ${data.length} data elements`,
      );
    const bad = data.findIndex((v) => !Number.isInteger(v));
    if (bad >= 0) throw invalid(`element ${bad} of input "${t.name}" is ${JSON.stringify(data[bad])}, not an integer`);
    return data;
  };
  const idData = flat(ids) as number[];
  const maskData = flat(mask) as number[];
  const typeData = byName.has('token_type_ids') ? (flat(byName.get('token_type_ids')!) as number[]) : null;
  return Array.from({ length: batch }, (_, r) => {
    const rowMask = maskData.slice(r * sequence, (r + 1) * sequence);
    const length = rowMask.indexOf(0) === -1 ? sequence : rowMask.indexOf(0);
    if (rowMask.slice(length).some((m) => m !== 0) || rowMask.some((m) => m !== 0 && m !== 1)) {
      throw invalid(`row ${r} of "attention_mask" is not 1s followed by 0s; put the padding at the end of each row`);
    }
    const row = { ids: idData.slice(r * sequence, r * sequence + length) };
    return typeData ? { ...row, typeIds: typeData.slice(r * sequence, r * sequence + length) } : row;
  });
}

/**
 * An image model's request: one input, BYTES [n] of base64 images, or FP32 [n, 3, H, W]
 * tensors (data flat or nested).
 */
export function readImages(
  inputs: readonly TensorInput[],
  spec: ImagePreprocessing,
): { kind: 'images'; images: Uint8Array[] } | { kind: 'tensors'; rows: Float32Array[] } {
  if (inputs.length !== 1)
    throw invalid(
      `the model takes one input, "image" (BYTES) or "${spec.input}" (FP32), but the request has ${inputs.length}`,
    );
  const input = inputs[0]!;
  const n = input.shape[0] ?? 0;
  if (!Number.isInteger(n) || n < 1)
    throw invalid(
      `input "${input.name}" has shape ${JSON.stringify(input.shape)}; send at least one image: BYTES [n] (base64) or FP32 [n, 3, ${spec.height}, ${spec.width}]`,
    );
  if (n > MAX_TEXTS_PER_REQUEST)
    throw new KilnError('KILN_ERR_HTTP_TOO_MANY_TEXTS', { count: n, limit: MAX_TEXTS_PER_REQUEST });
  if (input.datatype === 'BYTES') {
    if (!(input.shape.length === 1 || (input.shape.length === 2 && input.shape[1] === 1)))
      throw invalid(`input "${input.name}" has shape ${JSON.stringify(input.shape)}; images take shape [n]`);
    const data = input.data.flat();
    if (data.length !== n)
      throw invalid(
        `input "${input.name}" has shape ${JSON.stringify(input.shape)} (${n} elements) but ${data.length} data elements`,
      );
    return {
      kind: 'images',
      images: data.map(
        (d, i) => decodeBase64(d) ?? fail(invalid(`element ${i} of input "${input.name}" is not a base64 string`)),
      ),
    };
  }
  if (input.datatype === 'FP32') {
    const want = [n, 3, spec.height, spec.width];
    if (input.shape.length !== 4 || input.shape.some((d, i) => d !== want[i]))
      throw invalid(
        `input "${input.name}" has shape ${JSON.stringify(input.shape)}; this model takes FP32 [n, 3, ${spec.height}, ${spec.width}]`,
      );
    const data = input.data.flat(3);
    const size = 3 * spec.height * spec.width;
    if (data.length !== n * size)
      throw invalid(
        `input "${input.name}" has shape ${JSON.stringify(input.shape)} (${n * size} elements) but ${data.length} data elements`,
      );
    const bad = data.findIndex((v) => typeof v !== 'number');
    if (bad >= 0)
      throw invalid(`element ${bad} of input "${input.name}" is ${JSON.stringify(data[bad])}, not a number`);
    const flat = Float32Array.from(data as number[]);
    return { kind: 'tensors', rows: Array.from({ length: n }, (_, r) => flat.subarray(r * size, (r + 1) * size)) };
  }
  throw invalid(
    `input "${input.name}" has datatype ${JSON.stringify(input.datatype)}; an image model takes BYTES (base64 images) or FP32 tensors`,
  );
}

/**
 * A text model's request: texts (each within the request limits) or token rows, and how errors
 * name element i.
 */
export function readTextRequest(
  inputs: readonly TensorInput[],
  limits: RequestLimits,
): TokenRequest & { describe: (index: number) => string } {
  const describe = (i: number): string => `element ${i} of input "${inputs[0]!.name}"`;
  const parsed = readRequest(inputs);
  if (parsed.kind === 'texts') checkTexts(parsed.texts, describe, limits);
  return { ...parsed, describe };
}
