/**
 * Labelled or unlabelled texts from a file, for bench, verify and batch: TSV or CSV with a
 * header naming the text column (`sentence` or `text`, or `--text-column`) and optionally
 * `label`; JSON Lines with `{"text", "label", "id"}`; anything else is one text per line. A
 * `text_pair` column (or field) makes each row a text pair, for pair classifiers; a `query`
 * column with a `text` column makes each row a query–passage pair, for rerankers; `question` and
 * `context` columns make each row a question for extractive question answering (the question
 * first, the context second); a `candidate_labels` column (comma-separated, or a JSON list in
 * JSON Lines) gives a zero-shot classifier each row's labels, as the pair's second text. An
 * `answer` column (or `answers`: in JSON Lines a list of strings, or SQuAD's `{"text": […]}`)
 * gives a question its gold answers, for `compile --verify`.
 * Files are read as a stream, line by line, so a batch job's memory does not grow with them.
 */
import { createReadStream } from 'node:fs';
import { extname } from 'node:path';
import { createInterface } from 'node:readline';
import { KilnError } from '../core/errors.js';
import { pathKind } from '../core/fs.js';
import type { ModelInput } from './input.js';

export interface Example {
  /** The text, or a pair's first text (a ranker's query). */
  text: string;
  /** A pair's second text (`text_pair`, or a ranker's passage); absent for a single text. */
  pair?: string;
  /** A label name, or a class id as a number; absent when the file has none. */
  label?: string | number;
  /** 1-based line of the file, for messages. */
  line: number;
  /** The row's own id (JSONL `id`), when it has one. */
  id?: string | number;
  /** A question's gold answers (`answer` / `answers`), when the file has them. */
  answers?: string[];
}

/** One row of a file as a batch job sees it: an example, or why the row cannot be one. */
export type Row = { line: number; example: Example } | { line: number; error: KilnError };

export interface Dataset {
  path: string;
  format: 'tsv' | 'csv' | 'jsonl' | 'lines';
  examples: Example[];
  hasLabels: boolean;
}

const TEXT_COLUMNS = ['sentence', 'text'];

/** What a model reads for an example: its text, or its text pair. */
export function inputOf(example: Example): ModelInput {
  return example.pair === undefined ? example.text : { text: example.text, text_pair: example.pair };
}

/**
 * A row's text and pair from its text cell, `text_pair` cell and `query` cell (undefined when
 * the file has no such column): a query comes first, the text second; null when one is empty.
 */
function pairOf(
  text: string,
  pair: string | undefined,
  query: string | undefined,
): { text: string; pair?: string } | string {
  if (query !== undefined) {
    if (query.trim() === '') return 'the query is empty';
    return { text: query, pair: text };
  }
  if (pair === undefined) return { text };
  return pair.trim() === '' ? 'the text pair is empty' : { text, pair };
}

/** Splits one CSV record, honouring double quotes ("" inside quotes is a quote). */
export function splitCsvLine(line: string): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i += 1) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"' && cell === '') quoted = true;
    else if (c === ',') {
      cells.push(cell);
      cell = '';
    } else cell += c;
  }
  cells.push(cell);
  return cells;
}

function labelOf(raw: string): string | number {
  const trimmed = raw.trim();
  return /^\d+$/.test(trimmed) ? Number(trimmed) : trimmed;
}

/**
 * A JSON Lines row's gold answers: a string, a list of strings, or SQuAD's
 * `{"text": [...], "answer_start": [...]}`; undefined when there are none.
 */
function goldAnswers(value: unknown): string[] | undefined {
  const list =
    typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as { text?: unknown }).text : value;
  const answers = (Array.isArray(list) ? list : [list]).filter((a): a is string => typeof a === 'string');
  return answers.length > 0 ? answers : undefined;
}

export function formatOf(path: string): Dataset['format'] {
  const extension = extname(path).toLowerCase();
  if (extension === '.jsonl' || extension === '.ndjson') return 'jsonl';
  if (extension === '.tsv') return 'tsv';
  if (extension === '.csv') return 'csv';
  return 'lines';
}

/**
 * Streams the rows of a data file. Blank lines are skipped (they are no rows); every other line
 * yields an example or, when it cannot be read, an error naming the line.
 */
export async function* streamRows(path: string, options: { textColumn?: string } = {}): AsyncGenerator<Row> {
  if ((await pathKind(path)) !== 'file') throw new KilnError('KILN_ERR_INPUT_FILE_NOT_FOUND', { path });
  const format = formatOf(path);
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let lineNo = 0;
  let header: string[] | null = null;
  let textIndex = -1;
  let labelIndex = -1;
  let pairIndex = -1;
  let queryIndex = -1;
  let answerIndex = -1;
  const invalid = (line: number, problem: string): Row => ({
    line,
    error: new KilnError('KILN_ERR_DATA_INVALID', { path, line, problem }),
  });
  for await (const raw of lines) {
    lineNo += 1;
    const line = lineNo === 1 ? raw.replace(/^\uFEFF/, '') : raw;
    if (format === 'tsv' || format === 'csv') {
      const split = format === 'tsv' ? (l: string) => l.split('\t') : splitCsvLine;
      if (header === null) {
        header = split(line).map((h) => h.trim().toLowerCase());
        const wanted = options.textColumn?.toLowerCase();
        textIndex = wanted ? header.indexOf(wanted) : header.findIndex((h) => TEXT_COLUMNS.includes(h));
        // A question's passage: the question is read as a query, the context as its text.
        if (textIndex < 0 && !wanted && header.includes('question')) textIndex = header.indexOf('context');
        if (textIndex < 0)
          throw new KilnError('KILN_ERR_DATA_NO_TEXT_COLUMN', { path, columns: JSON.stringify(header) });
        labelIndex = header.indexOf('label');
        pairIndex = header.includes('text_pair') ? header.indexOf('text_pair') : header.indexOf('candidate_labels');
        queryIndex = header.includes('query') ? header.indexOf('query') : header.indexOf('question');
        answerIndex = header.includes('answer') ? header.indexOf('answer') : header.indexOf('answers');
        continue;
      }
      if (line.trim() === '') continue;
      const cells = split(line);
      if (cells.length !== header.length) {
        yield invalid(lineNo, `${cells.length} columns where the header has ${header.length}`);
        continue;
      }
      // GLUE's files end each sentence with a space before the tab.
      const text = cells[textIndex]!.trim();
      const cell = (index: number) => (index >= 0 ? cells[index]!.trim() : undefined);
      const texts = pairOf(text, cell(pairIndex), cell(queryIndex));
      if (text === '') yield invalid(lineNo, 'the text is empty');
      else if (typeof texts === 'string') yield invalid(lineNo, texts);
      else
        yield {
          line: lineNo,
          example: {
            ...texts,
            line: lineNo,
            ...(labelIndex >= 0 && cells[labelIndex]!.trim() !== '' ? { label: labelOf(cells[labelIndex]!) } : {}),
            ...(answerIndex >= 0 && cells[answerIndex]!.trim() !== '' ? { answers: [cells[answerIndex]!.trim()] } : {}),
          },
        };
    } else if (format === 'jsonl') {
      if (line.trim() === '') continue;
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch (err) {
        yield invalid(lineNo, `not valid JSON (${(err as Error).message})`);
        continue;
      }
      const record = (typeof row === 'object' && row !== null ? row : {}) as Record<string, unknown>;
      const key =
        options.textColumn ??
        (typeof record.text === 'string'
          ? 'text'
          : typeof record.question === 'string' && typeof record.context === 'string'
            ? 'context'
            : 'sentence');
      const text = typeof row === 'string' ? row : typeof record[key] === 'string' ? (record[key] as string) : null;
      const field = (name: string) => {
        const value = record[name];
        return value === undefined ? undefined : typeof value === 'string' ? value : null;
      };
      // Candidate labels as a list travel as JSON text (a label may hold a comma).
      const labels = Array.isArray(record.candidate_labels)
        ? JSON.stringify(record.candidate_labels)
        : field('candidate_labels');
      const [pair, query] = [field('text_pair') ?? labels, field('query') ?? field('question')];
      const texts = text === null || pair === null || query === null ? null : pairOf(text, pair, query);
      if (text === null) yield invalid(lineNo, `the object has no "${options.textColumn ?? 'text'}" string`);
      else if (text.trim() === '') yield invalid(lineNo, 'the text is empty');
      else if (texts === null) yield invalid(lineNo, `"${pair === null ? 'text_pair' : 'query'}" is not a string`);
      else if (typeof texts === 'string') yield invalid(lineNo, texts);
      else {
        const label = typeof record.label === 'string' || typeof record.label === 'number' ? record.label : undefined;
        const id = typeof record.id === 'string' || typeof record.id === 'number' ? record.id : undefined;
        const answers = goldAnswers(record.answer ?? record.answers);
        yield {
          line: lineNo,
          example: {
            ...texts,
            line: lineNo,
            ...(label !== undefined ? { label } : {}),
            ...(id !== undefined ? { id } : {}),
            ...(answers ? { answers } : {}),
          },
        };
      }
    } else {
      if (line.trim() === '') continue;
      yield { line: lineNo, example: { text: line, line: lineNo } };
    }
  }
}

/** The whole file, for bench and verify: the first unreadable row is an error. */
export async function readDataset(path: string, options: { textColumn?: string } = {}): Promise<Dataset> {
  const examples: Example[] = [];
  for await (const row of streamRows(path, options)) {
    if ('error' in row) throw row.error;
    examples.push(row.example);
  }
  if (examples.length === 0) throw new KilnError('KILN_ERR_DATA_EMPTY', { path });
  return { path, format: formatOf(path), examples, hasLabels: examples.every((e) => e.label !== undefined) };
}
