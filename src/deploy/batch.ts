/**
 * `kiln batch`: offline inference over a large file. Streams a file of texts (or text pairs:
 * `text_pair`, or a ranker's `query` and `text` columns), batches them
 * by length within bounded windows, and writes exactly one JSON line per input row, in input
 * order. Killed at any moment, a rerun continues where the output ends; `--shard I/N` takes a
 * deterministic 1/N of the rows so N machines cover a file exactly once.
 */
import { createReadStream } from 'node:fs';
import { open, readFile, truncate } from 'node:fs/promises';
import { KilnError, toKilnError } from '../core/errors.js';
import { pathKind } from '../core/fs.js';
import { inputOf, type Row, streamRows } from '../model/dataset.js';
import type { ModelInput } from '../runtime/task-model.js';
import { type LoadedModel, taskOf } from '../tasks/registry.js';

export interface Shard {
  /** 0-based. */
  index: number;
  count: number;
}

export interface BatchOptions {
  model: LoadedModel;
  /** Turns a row's text into the model's input (an image model reads the file it names). @defaultValue the text itself */
  readInput?: (text: string) => Promise<ModelInput>;
  input: string;
  output: string;
  shard?: Shard;
  textColumn?: string;
  /** Rows read, sorted by length and run together; bounds memory. @defaultValue 4096 */
  window?: number;
  /** Ignore an existing output and start over. @defaultValue false */
  restart?: boolean;
  /** Also write each text with its entities replaced by `[LABEL]` (token classifiers). @defaultValue false */
  redact?: boolean;
  onProgress?: (progress: { rows: number; line: number; lines: number }) => void;
}

export interface BatchSummary {
  rows: number;
  /** Rows already in the output from an earlier run that was interrupted. */
  resumed: number;
  errors: number;
  labels: Record<string, number>;
  seconds: number;
  rowsPerSecond: number;
}

interface OutputLine {
  line: number;
  id?: string | number;
  label?: string;
  score?: number;
  /** feature-extraction: the row's vector. */
  embedding?: number[];
  /** image-classification: the top labels with their scores. */
  labels?: Array<{ label: string; score: number }>;
  /** token-classification: the row's entities, and the text redacted when asked. */
  entities?: object[];
  redacted?: string;
  error?: { code: string; message: string };
}

/**
 * Reads what an earlier run wrote: cuts a line a kill left half-written, and returns the last
 * input line done plus the counts so far.
 */
async function resumePoint(
  output: string,
): Promise<{ lastLine: number; rows: number; errors: number; labels: Record<string, number> }> {
  const empty = { lastLine: 0, rows: 0, errors: 0, labels: {} };
  if ((await pathKind(output)) !== 'file') return empty;
  const text = await readFile(output, 'utf8');
  const end = text.lastIndexOf('\n') + 1;
  if (end < text.length) await truncate(output, Buffer.byteLength(text.slice(0, end)));
  const state = { ...empty, labels: {} as Record<string, number> };
  for (const line of text.slice(0, end).split('\n')) {
    if (line === '') continue;
    let parsed: OutputLine;
    try {
      parsed = JSON.parse(line) as OutputLine;
    } catch (err) {
      throw new KilnError(
        'KILN_ERR_BATCH_OUTPUT_INVALID',
        { path: output, problem: `a line is not JSON (${(err as Error).message})` },
        { cause: err },
      );
    }
    if (typeof parsed.line !== 'number' || parsed.line <= state.lastLine) {
      throw new KilnError('KILN_ERR_BATCH_OUTPUT_INVALID', {
        path: output,
        problem: `its lines are not in input order (line ${JSON.stringify(parsed.line)} after ${state.lastLine})`,
      });
    }
    state.lastLine = parsed.line;
    state.rows += 1;
    if (parsed.error) state.errors += 1;
    else if (parsed.label) state.labels[parsed.label] = (state.labels[parsed.label] ?? 0) + 1;
  }
  return state;
}

/** Lines in a file, counted in one streamed pass (for progress and ETA). */
async function countLines(path: string): Promise<number> {
  let count = 0;
  for await (const chunk of createReadStream(path)) {
    for (const byte of chunk as Buffer) if (byte === 0x0a) count += 1;
  }
  return count;
}

export async function runBatch(options: BatchOptions): Promise<BatchSummary> {
  const started = performance.now();
  const windowSize = options.window ?? 4096;
  const shard = options.shard ?? { index: 0, count: 1 };
  const resume = options.restart
    ? { lastLine: 0, rows: 0, errors: 0, labels: {} as Record<string, number> }
    : await resumePoint(options.output);
  const file = await open(options.output, options.restart ? 'w' : 'a');
  const lines = await countLines(options.input);
  let lineNow = 0;
  const summary = { rows: resume.rows, errors: resume.errors, labels: { ...resume.labels } };
  const { model, redact = false } = options;
  const task = taskOf(model);

  const flush = async (rows: Row[]): Promise<void> => {
    const examples = rows.flatMap((r) => ('example' in r ? [r] : []));
    // Submitted shortest first, so the scheduler's batches hold texts of similar length.
    // Each text is measured once, not in every comparison the sort makes.
    const read = options.readInput;
    const inputs = new Map<number, ModelInput>();
    const unreadable = new Map<number, unknown>();
    for (const r of examples) {
      try {
        inputs.set(r.line, read ? await read(r.example.text) : inputOf(r.example));
      } catch (err) {
        unreadable.set(r.line, err);
      }
    }
    const order = examples
      .filter((r) => inputs.has(r.line))
      .map((r) => ({ r, size: model.inputSize(inputs.get(r.line)!) }))
      .sort((a, b) => a.size - b.size)
      .map(({ r }) => r);
    const settled: PromiseSettledResult<object>[] = await Promise.allSettled(
      order.map(async (r) =>
        task.answers.batch(
          (await model.infer([inputs.get(r.line)!], () => `line ${r.line}`, redact ? { redact } : {}))[0]!,
        ),
      ),
    );
    for (const [line, err] of unreadable) {
      const r = examples.find((e) => e.line === line)!;
      order.push(r);
      settled.push({ status: 'rejected', reason: err });
    }
    const answers = new Map<number, OutputLine>();
    order.forEach((r, i) => {
      const s = settled[i]!;
      const id = r.example.id !== undefined ? { id: r.example.id } : {};
      if (s.status === 'fulfilled') answers.set(r.line, { line: r.line, ...id, ...s.value });
      else {
        const e = toKilnError(s.reason);
        answers.set(r.line, { line: r.line, ...id, error: { code: e.code, message: e.message } });
      }
    });
    let out = '';
    for (const row of rows) {
      const answer =
        'error' in row
          ? { line: row.line, error: { code: row.error.code, message: row.error.message } }
          : answers.get(row.line)!;
      out += `${JSON.stringify(answer)}\n`;
      summary.rows += 1;
      if (answer.error) summary.errors += 1;
      else if (answer.label) summary.labels[answer.label] = (summary.labels[answer.label] ?? 0) + 1;
    }
    // One write per window: a kill leaves whole lines plus at most one partial line, cut on resume.
    await file.write(out);
    options.onProgress?.({ rows: summary.rows, line: lineNow, lines });
  };

  try {
    let window: Row[] = [];
    let index = -1;
    for await (const row of streamRows(options.input, { textColumn: options.textColumn })) {
      index += 1;
      lineNow = row.line;
      if (index % shard.count !== shard.index || row.line <= resume.lastLine) continue;
      window.push(row);
      if (window.length >= windowSize) {
        await flush(window);
        window = [];
      }
    }
    if (window.length > 0) await flush(window);
  } finally {
    await file.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const done = summary.rows - resume.rows;
  return { ...summary, resumed: resume.rows, seconds, rowsPerSecond: done / Math.max(seconds, 1e-9) };
}
