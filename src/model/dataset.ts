/**
 * Labelled or unlabelled texts from a file, for bench, verify and batch: TSV or CSV with a
 * header naming the text column (`sentence` or `text`) and optionally `label`; JSON Lines with
 * `{"text", "label"}`; anything else is one text per line.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { KilnError } from '../core/errors.js';
import { pathKind } from '../core/fs.js';

export interface Example {
  text: string;
  /** A label name, or a class id as a number; absent when the file has none. */
  label?: string | number;
  /** 1-based line of the file, for messages. */
  line: number;
}

export interface Dataset {
  path: string;
  format: 'tsv' | 'csv' | 'jsonl' | 'lines';
  examples: Example[];
  hasLabels: boolean;
}

const TEXT_COLUMNS = ['sentence', 'text'];

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

export async function readDataset(path: string): Promise<Dataset> {
  if ((await pathKind(path)) !== 'file') throw new KilnError('KILN_ERR_INPUT_FILE_NOT_FOUND', { path });
  const lines = (await readFile(path, 'utf8')).split(/\r?\n/);
  const extension = extname(path).toLowerCase();
  const examples: Example[] = [];
  let format: Dataset['format'];

  if (extension === '.jsonl' || extension === '.ndjson') {
    format = 'jsonl';
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch (err) {
        throw new KilnError('KILN_ERR_DATA_INVALID', { path, line: i + 1, problem: `not valid JSON (${(err as Error).message})` }, { cause: err });
      }
      const record = row as { text?: unknown; sentence?: unknown; label?: unknown };
      const text = typeof record.text === 'string' ? record.text : typeof record.sentence === 'string' ? record.sentence : null;
      if (text === null) throw new KilnError('KILN_ERR_DATA_INVALID', { path, line: i + 1, problem: 'the object has no "text" string' });
      const label = typeof record.label === 'string' || typeof record.label === 'number' ? record.label : undefined;
      examples.push({ text, line: i + 1, ...(label !== undefined ? { label } : {}) });
    });
  } else if (extension === '.tsv' || extension === '.csv') {
    format = extension === '.tsv' ? 'tsv' : 'csv';
    const split = format === 'tsv' ? (l: string) => l.split('\t') : splitCsvLine;
    const header = split(lines[0] ?? '').map((h) => h.trim().toLowerCase());
    const textColumn = header.findIndex((h) => TEXT_COLUMNS.includes(h));
    if (textColumn < 0) throw new KilnError('KILN_ERR_DATA_NO_TEXT_COLUMN', { path, columns: JSON.stringify(header) });
    const labelColumn = header.indexOf('label');
    lines.slice(1).forEach((line, i) => {
      if (line.trim() === '') return;
      const cells = split(line);
      if (cells.length !== header.length) {
        throw new KilnError('KILN_ERR_DATA_INVALID', { path, line: i + 2, problem: `${cells.length} columns where the header has ${header.length}` });
      }
      // GLUE's files end each sentence with a space before the tab.
      const text = cells[textColumn]!.trim();
      examples.push({ text, line: i + 2, ...(labelColumn >= 0 && cells[labelColumn]!.trim() !== '' ? { label: labelOf(cells[labelColumn]!) } : {}) });
    });
  } else {
    format = 'lines';
    lines.forEach((line, i) => {
      if (line.trim() !== '') examples.push({ text: line, line: i + 1 });
    });
  }
  for (const e of examples) {
    if (e.text.trim() === '') throw new KilnError('KILN_ERR_DATA_INVALID', { path, line: e.line, problem: 'the text is empty' });
  }
  if (examples.length === 0) throw new KilnError('KILN_ERR_DATA_EMPTY', { path });
  return { path, format, examples, hasLabels: examples.every((e) => e.label !== undefined) };
}
