/**
 * NumPy's .npy format (version 1.0) for `kiln batch --format npy`: the embeddings of a batch job
 * as one float32 matrix that `numpy.load` reads. The JSON Lines output stays the resumable record;
 * the matrix is written from it when the job ends, streamed row by row.
 */
import { createReadStream } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { KilnError } from '../core/errors.js';

/** The 10-byte preamble and the header dict, padded with spaces so the data starts at a multiple of 64. */
export function npyHeader(rows: number, columns: number): Buffer {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${columns}), }`;
  const unpadded = 10 + dict.length + 1;
  const padding = (64 - (unpadded % 64)) % 64;
  const header = `${dict}${' '.repeat(padding)}\n`;
  const preamble = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
  preamble.writeUInt16LE(header.length, 8);
  return Buffer.concat([preamble, Buffer.from(header, 'latin1')]);
}

/**
 * Writes the vectors of a finished JSON Lines output as a [rows, dimension] float32 matrix, row i
 * for output line i. A row that failed gets NaN in every column (its line number is returned) so
 * rows never shift. Written to a temporary file and renamed: a reader never sees half a matrix.
 */
export async function writeNpyFromJsonl(
  jsonl: string,
  npy: string,
  dimension: number,
): Promise<{ rows: number; failedLines: number[] }> {
  const lines = async function* (): AsyncGenerator<{ line: number; embedding?: number[] }> {
    for await (const text of createInterface({ input: createReadStream(jsonl), crlfDelay: Infinity }))
      if (text !== '') yield JSON.parse(text) as { line: number; embedding?: number[] };
  };
  let rows = 0;
  for await (const _ of lines()) rows += 1;
  const temporary = `${npy}.tmp-${process.pid}`;
  const file = await open(temporary, 'w');
  const failedLines: number[] = [];
  try {
    await file.write(npyHeader(rows, dimension));
    const row = Buffer.alloc(dimension * 4);
    for await (const answer of lines()) {
      if (answer.embedding) {
        if (answer.embedding.length !== dimension) {
          throw new KilnError('KILN_ERR_BATCH_OUTPUT_INVALID', {
            path: jsonl,
            problem: `line ${answer.line}'s embedding has ${answer.embedding.length} values, the model makes ${dimension}`,
          });
        }
        answer.embedding.forEach((v, i) => {
          row.writeFloatLE(v, i * 4);
        });
      } else {
        failedLines.push(answer.line);
        row.fill(0);
        for (let i = 0; i < dimension; i += 1) row.writeFloatLE(NaN, i * 4);
      }
      await file.write(row);
    }
  } finally {
    await file.close();
  }
  await rename(temporary, npy);
  return { rows, failedLines };
}
