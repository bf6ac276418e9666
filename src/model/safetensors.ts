/**
 * Hugging Face safetensors checkpoints, read and written one tensor at a time: a checkpoint can be
 * larger than memory, so opening reads only the header and each read touches only its tensor's bytes.
 *
 * Layout (https://github.com/huggingface/safetensors#format): an 8-byte little-endian header
 * length N, N bytes of UTF-8 JSON, then the data buffer; `data_offsets` count from its start.
 */
import { type FileHandle, open, readFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { KilnError } from '../core/errors.js';
import { IO_CHUNK, pathKind, writeFileAtomically } from '../core/fs.js';
import { decodeBf16, decodeF16, encodeBf16, encodeF16 } from './float16.js';

/** The dtypes kiln reads. */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'I64' | 'I32';

const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4 };
const SUPPORTED = Object.keys(DTYPE_BYTES).join(', ');

/** A header larger than this is not a real checkpoint (the largest hub models have ~1 MB headers). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export interface TensorEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Bytes of data the tensor occupies in the file. */
  byteLength: number;
  /** Path of the safetensors file that holds the tensor. */
  file: string;
}

interface Located {
  entry: TensorEntry;
  /** Absolute position of the tensor's first byte in the file. */
  position: number;
}

const isDtype = (value: string): value is SafetensorsDtype => Object.hasOwn(DTYPE_BYTES, value);
const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;
const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function invalid(path: string, problem: string, cause?: unknown): KilnError {
  return new KilnError('KILN_ERR_WEIGHTS_INVALID', { path, problem }, cause === undefined ? undefined : { cause });
}

/** Reads exactly `length` bytes at `position`; a file that ends early is truncated. */
async function readExactly(fh: FileHandle, path: string, position: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(out, done, Math.min(IO_CHUNK, length - done), position + done);
    if (bytesRead === 0) {
      throw new KilnError('KILN_ERR_WEIGHTS_TRUNCATED', { path, expected: position + length, actual: position + done });
    }
    done += bytesRead;
  }
  return out;
}

/** Parses and checks a header; every check runs before any tensor data is touched. */
function parseHeader(
  path: string,
  headerBytes: Uint8Array,
  dataStart: number,
  fileSize: number,
): { metadata: Record<string, string>; located: Located[] } {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (err) {
    throw invalid(path, `the header is not UTF-8 JSON (${(err as Error).message})`, err);
  }
  if (!isPlainObject(header)) throw invalid(path, 'the header is not a JSON object');

  const metadata: Record<string, string> = {};
  const located: Array<Located & { end: number }> = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isPlainObject(value)) throw invalid(path, '"__metadata__" is not an object of strings');
      for (const [key, text] of Object.entries(value)) {
        if (typeof text !== 'string')
          throw invalid(path, `"__metadata__" entry ${JSON.stringify(key)} is not a string`);
        metadata[key] = text;
      }
      continue;
    }
    const where = `tensor ${JSON.stringify(name)}`;
    if (!isPlainObject(value)) throw invalid(path, `${where} is not an object with dtype, shape and data_offsets`);
    const { dtype, shape, data_offsets: offsets } = value;
    if (typeof dtype !== 'string') throw invalid(path, `${where} has no dtype string`);
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      throw invalid(path, `${where} has shape ${JSON.stringify(shape)}; a shape is a list of non-negative integers`);
    }
    const [begin, end] = Array.isArray(offsets) && offsets.length === 2 ? offsets : [];
    if (!isCount(begin) || !isCount(end) || begin > end) {
      throw invalid(
        path,
        `${where} has data_offsets ${JSON.stringify(offsets)}; they must be [begin, end] with 0 <= begin <= end`,
      );
    }
    if (!isDtype(dtype))
      throw new KilnError('KILN_ERR_WEIGHTS_DTYPE', { path, tensor: name, dtype, supported: SUPPORTED });
    // BigInt: a product of safe integers can leave the safe range and compare equal by accident.
    const needed = shape.reduce((acc: bigint, dim: number) => acc * BigInt(dim), BigInt(DTYPE_BYTES[dtype]));
    if (needed !== BigInt(end - begin)) {
      throw invalid(
        path,
        `${where} (${dtype} ${formatShape(shape)}) needs ${needed} bytes, but its data_offsets [${begin}, ${end}] hold ${end - begin}`,
      );
    }
    located.push({
      entry: { name, dtype, shape: [...shape] as number[], byteLength: end - begin, file: path },
      position: dataStart + begin,
      end: dataStart + end,
    });
  }

  located.sort((a, b) => a.position - b.position || a.end - b.end);
  let previous: (typeof located)[number] | undefined;
  for (const item of located) {
    if (item.entry.byteLength === 0) continue; // an empty tensor shares no bytes with anything
    if (previous && item.position < previous.end) {
      throw invalid(
        path,
        `tensors ${JSON.stringify(previous.entry.name)} and ${JSON.stringify(item.entry.name)} overlap ` +
          `(data_offsets [${previous.position - dataStart}, ${previous.end - dataStart}] and [${item.position - dataStart}, ${item.end - dataStart}])`,
      );
    }
    previous = item;
  }
  const maxEnd = located.reduce((acc, item) => Math.max(acc, item.end), dataStart);
  if (maxEnd > fileSize)
    throw new KilnError('KILN_ERR_WEIGHTS_TRUNCATED', { path, expected: maxEnd, actual: fileSize });

  return { metadata, located: located.map(({ entry, position }) => ({ entry, position })) };
}

/** One safetensors file, open for reading tensors one at a time. */
export class SafetensorsFile {
  /** The header's `__metadata__` (empty when it has none). */
  readonly metadata: Record<string, string>;
  readonly path: string;
  readonly #fh: FileHandle;
  readonly #tensors: Map<string, Located>;
  #closed = false;

  private constructor(path: string, fh: FileHandle, metadata: Record<string, string>, located: Located[]) {
    this.path = path;
    this.#fh = fh;
    this.metadata = metadata;
    this.#tensors = new Map(located.map((item) => [item.entry.name, item]));
  }

  /** Opens `path` and validates its header; tensor data is not read. */
  static async open(path: string): Promise<SafetensorsFile> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new KilnError('KILN_ERR_SOURCE_NOT_FOUND', { path }, { cause: err });
      throw err;
    }
    try {
      const { size } = await fh.stat();
      if (size < 8) throw new KilnError('KILN_ERR_WEIGHTS_TRUNCATED', { path, expected: 8, actual: size });
      const prefix = await readExactly(fh, path, 0, 8);
      // Compare as BigInt before converting: a lying length (say 2^62) must never become an allocation.
      const headerLength = new DataView(prefix.buffer).getBigUint64(0, true);
      if (headerLength > BigInt(size - 8)) {
        throw invalid(path, `header length ${headerLength} runs past the end of the file (size ${size})`);
      }
      if (headerLength > BigInt(MAX_HEADER_BYTES)) {
        throw invalid(path, `header length ${headerLength} is over the ${MAX_HEADER_BYTES}-byte limit for a header`);
      }
      const n = Number(headerLength);
      const headerBytes = await readExactly(fh, path, 8, n);
      const { metadata, located } = parseHeader(path, headerBytes, 8 + n, size);
      return new SafetensorsFile(path, fh, metadata, located);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** The tensors, in the order their data lies in the file. */
  entries(): TensorEntry[] {
    return [...this.#tensors.values()].map(({ entry }) => ({ ...entry, shape: [...entry.shape] }));
  }

  /** The tensor's bytes exactly as stored (little-endian). */
  async readRaw(name: string): Promise<Uint8Array> {
    const item = this.#tensors.get(name);
    if (!item)
      throw new KilnError('KILN_ERR_WEIGHTS_MISSING_TENSOR', {
        path: this.path,
        tensor: name,
        architecture: 'safetensors',
      });
    return readExactly(this.#fh, this.path, item.position, item.entry.byteLength);
  }

  /** The tensor as float32: F16 and BF16 widened, I64 and I32 converted to the nearest float. */
  async readFloat32(name: string): Promise<Float32Array> {
    const raw = await this.readRaw(name);
    const dtype = this.#tensors.get(name)!.entry.dtype;
    switch (dtype) {
      case 'F16':
        return decodeF16(raw);
      case 'BF16':
        return decodeBf16(raw);
      case 'F32':
        if (!LITTLE_ENDIAN) Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).swap32();
        return new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
      case 'I32':
        if (!LITTLE_ENDIAN) Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).swap32();
        return Float32Array.from(new Int32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4));
      case 'I64': {
        if (!LITTLE_ENDIAN) Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).swap64();
        const ints = new BigInt64Array(raw.buffer, raw.byteOffset, raw.byteLength / 8);
        const out = new Float32Array(ints.length);
        for (let i = 0; i < ints.length; i += 1) out[i] = Number(ints[i]!);
        return out;
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#fh.close();
  }
}

const SINGLE_FILE = 'model.safetensors';
const INDEX_FILE = 'model.safetensors.index.json';

/** A model folder's weights: `model.safetensors`, or the shards that `model.safetensors.index.json` lists. */
export class Checkpoint {
  readonly dir: string;
  readonly #files: SafetensorsFile[];
  readonly #byName: Map<string, { file: SafetensorsFile; entry: TensorEntry }>;

  private constructor(
    dir: string,
    files: SafetensorsFile[],
    byName: Map<string, { file: SafetensorsFile; entry: TensorEntry }>,
  ) {
    this.dir = dir;
    this.#files = files;
    this.#byName = byName;
  }

  static async open(dir: string): Promise<Checkpoint> {
    const kind = await pathKind(dir);
    if (kind === 'missing') throw new KilnError('KILN_ERR_SOURCE_NOT_FOUND', { path: dir });

    const single = join(dir, SINGLE_FILE);
    if ((await pathKind(single)) === 'file') {
      const file = await SafetensorsFile.open(single);
      const byName = new Map(file.entries().map((entry) => [entry.name, { file, entry }]));
      return new Checkpoint(dir, [file], byName);
    }

    const indexPath = join(dir, INDEX_FILE);
    if ((await pathKind(indexPath)) !== 'file') {
      throw new KilnError('KILN_ERR_SOURCE_MISSING_FILE', {
        path: dir,
        file: `${SINGLE_FILE} or ${INDEX_FILE}`,
        purpose: 'the weights',
      });
    }
    const weightMap = await readWeightMap(dir, indexPath);

    const files: SafetensorsFile[] = [];
    try {
      const shards = new Map<string, { file: SafetensorsFile; entries: Map<string, TensorEntry> }>();
      for (const shard of new Set(weightMap.values())) {
        const shardPath = join(dir, shard);
        if ((await pathKind(shardPath)) !== 'file') {
          throw new KilnError('KILN_ERR_SOURCE_MISSING_FILE', {
            path: dir,
            file: shard,
            purpose: `the tensors that ${INDEX_FILE} maps to it`,
          });
        }
        const file = await SafetensorsFile.open(shardPath);
        files.push(file);
        shards.set(shard, { file, entries: new Map(file.entries().map((entry) => [entry.name, entry])) });
      }
      const byName = new Map<string, { file: SafetensorsFile; entry: TensorEntry }>();
      for (const [tensor, shard] of weightMap) {
        const { file, entries } = shards.get(shard)!;
        const entry = entries.get(tensor);
        if (!entry) {
          throw invalid(
            indexPath,
            `it maps tensor ${JSON.stringify(tensor)} to ${JSON.stringify(shard)}, which has no such tensor`,
          );
        }
        byName.set(tensor, { file, entry });
      }
      return new Checkpoint(dir, files, byName);
    } catch (err) {
      await Promise.all(files.map((file) => file.close()));
      throw err;
    }
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }

  entry(name: string): TensorEntry | undefined {
    const found = this.#byName.get(name);
    return found && { ...found.entry, shape: [...found.entry.shape] };
  }

  names(): string[] {
    return [...this.#byName.keys()];
  }

  /** Bytes of tensor data over all files. */
  totalBytes(): number {
    let total = 0;
    for (const { entry } of this.#byName.values()) total += entry.byteLength;
    return total;
  }

  /** Reads one tensor as float32, checking that the architecture's tensor exists with the expected shape. */
  async read(name: string, options: { architecture: string; shape?: number[] }): Promise<Float32Array> {
    const found = this.#byName.get(name);
    if (!found) {
      throw new KilnError('KILN_ERR_WEIGHTS_MISSING_TENSOR', {
        path: this.dir,
        tensor: name,
        architecture: options.architecture,
      });
    }
    const { shape } = options;
    const actual = found.entry.shape;
    if (shape && (shape.length !== actual.length || shape.some((dim, i) => dim !== actual[i]))) {
      throw new KilnError('KILN_ERR_WEIGHTS_SHAPE', {
        path: found.entry.file,
        tensor: name,
        expected: formatShape(shape),
        actual: formatShape(actual),
      });
    }
    return found.file.readFloat32(name);
  }

  async close(): Promise<void> {
    await Promise.all(this.#files.map((file) => file.close()));
  }
}

/** The index's tensor → shard file map; shard names must stay inside `dir`. */
async function readWeightMap(dir: string, indexPath: string): Promise<Map<string, string>> {
  let index: unknown;
  try {
    index = JSON.parse(await readFile(indexPath, 'utf8'));
  } catch (err) {
    throw invalid(indexPath, `it is not JSON (${(err as Error).message})`, err);
  }
  const weightMap = isPlainObject(index) ? index.weight_map : undefined;
  if (!isPlainObject(weightMap))
    throw invalid(indexPath, 'it has no "weight_map" object mapping tensor names to shard files');
  const map = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(weightMap)) {
    const inside = typeof shard === 'string' && shard !== '' && !isAbsolute(shard);
    const rel = inside ? relative(resolve(dir), resolve(dir, shard)) : '';
    if (!inside || rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
      throw invalid(
        indexPath,
        `"weight_map" maps tensor ${JSON.stringify(tensor)} to ${JSON.stringify(shard)}, which is not a file name in the folder`,
      );
    }
    map.set(tensor, shard);
  }
  return map;
}

/** One tensor to write; `data` is called only when its turn comes, so only one tensor is in memory. */
export interface TensorToWrite {
  name: string;
  dtype: 'F32' | 'F16' | 'BF16';
  shape: number[];
  data: () => Promise<Float32Array> | Float32Array;
}

/**
 * Writes a safetensors file, streaming: the header comes from the shapes alone, then each tensor's
 * data is produced, converted and written before the next one is asked for. The file appears at
 * `path` only when complete (written beside it, then renamed).
 */
export async function writeSafetensors(
  path: string,
  tensors: TensorToWrite[],
  metadata?: Record<string, string>,
): Promise<void> {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = { ...metadata };
  const seen = new Set<string>();
  let offset = 0;
  for (const { name, dtype, shape } of tensors) {
    if (name === '__metadata__' || seen.has(name))
      throw new RangeError(`writeSafetensors: tensor name ${JSON.stringify(name)} is reserved or repeated`);
    if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') {
      throw new RangeError(
        `writeSafetensors: tensor ${JSON.stringify(name)} has dtype ${JSON.stringify(dtype)}; write F32, F16 or BF16`,
      );
    }
    if (!shape.every(isCount))
      throw new RangeError(`writeSafetensors: tensor ${JSON.stringify(name)} has shape ${JSON.stringify(shape)}`);
    seen.add(name);
    const bytes = shape.reduce((acc, dim) => acc * dim, DTYPE_BYTES[dtype]);
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }

  const json = new TextEncoder().encode(JSON.stringify(header));
  // Pad with spaces so the data buffer starts 8-byte aligned, as the reference writer does.
  const headerLength = Math.ceil(json.byteLength / 8) * 8;
  const prefix = new Uint8Array(8 + headerLength).fill(0x20);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerLength), true);
  prefix.set(json, 8);

  await writeFileAtomically(
    path,
    async (write) => {
      await write(prefix);
      for (const { name, dtype, shape, data } of tensors) {
        const values = await data();
        const count = shape.reduce((acc, dim) => acc * dim, 1);
        if (values.length !== count) {
          throw new RangeError(
            `writeSafetensors: tensor ${JSON.stringify(name)} has shape ${formatShape(shape)} (${count} values), got ${values.length}`,
          );
        }
        await write(encodeValues(values, dtype));
      }
    },
    { sync: true },
  );
}

function encodeValues(values: Float32Array, dtype: 'F32' | 'F16' | 'BF16'): Uint8Array {
  if (dtype === 'F16') return encodeF16(values);
  if (dtype === 'BF16') return encodeBf16(values);
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  return LITTLE_ENDIAN ? bytes : Buffer.from(bytes).swap32();
}
