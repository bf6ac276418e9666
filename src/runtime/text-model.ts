/**
 * What the text tasks share: the tokenizer on the calling thread, the empty-text check,
 * truncation at max length, token rows a client made itself, `infer`. A text task (classifier,
 * embedder) says only what a row of the graph's output means ({@link TextModel.answer}).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError } from '../core/errors.js';
import type { Manifest } from '../model/artifact.js';
import type { EncodedText, TextToken, TextTokenizer } from '../model/tokenizer.js';
import { textBatcher } from './batcher.js';
import type { Scheduler } from './scheduler.js';
import {
  type InferOptions,
  type Layout,
  loadTokenizer,
  type ModelInput,
  type ModelOptions,
  startScheduler,
  TaskModel,
  type TextPair,
} from './task-model.js';

/** What a text task reads: a text, or a pair laid out as the tokenizer's post-processor says. */
export type TextInput = string | TextPair;

/** What the tokenizer made of a text; every text task's answer reports it. */
export interface TextTokens {
  /** Tokens the model saw, special tokens included. */
  tokens: number;
  /** True when the text was cut at the artifact's max length. */
  truncated: boolean;
}

/** How a request's texts are encoded: truncation (model/tokenizer.ts) and the prompt put before each. */
export interface TextOptions extends InferOptions {
  /** A prompt of {@link TextModel.prompts} put before every text; none when absent. */
  promptName?: string;
}

/** A text's output row and what the tokenizer made of it. */
export interface TextRow extends TextTokens {
  row: number[];
}

/** What a text task's constructor gets from {@link TextModel.start}. */
export interface TextParts {
  tokenizer: TextTokenizer;
  scheduler: Scheduler<EncodedText>;
  layout: Layout;
  typeVocab: number;
}

export abstract class TextModel<R> extends TaskModel<EncodedText, R> {
  protected readonly tokenizer: TextTokenizer;
  /** Rows of the token type table (config.json's type_vocab_size; BERT's 2 when it does not say). */
  private readonly typeVocab: number;

  protected constructor(dir: string, manifest: Manifest, parts: TextParts) {
    super(dir, manifest, parts.scheduler, parts.layout);
    this.tokenizer = parts.tokenizer;
    this.typeVocab = parts.typeVocab;
  }

  /** The tokenizer and the started replicas of a text artifact, for a subclass's constructor. */
  protected static async start(dir: string, manifest: Manifest, options: ModelOptions): Promise<TextParts> {
    const tokenizer = await loadTokenizer(dir, manifest);
    let typeVocab = 2;
    try {
      const size = (JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { type_vocab_size?: unknown })
        .type_vocab_size;
      if (typeof size === 'number' && Number.isInteger(size) && size > 0) typeVocab = size;
    } catch {
      // No readable config.json in the artifact: BERT's two token types.
    }
    const { scheduler, layout } = await startScheduler(
      dir,
      manifest,
      options,
      textBatcher(manifest.model.inputs, tokenizer.padId),
    );
    return { tokenizer, scheduler, layout, typeVocab };
  }

  /** What a text's output row means for this task: a prediction, an embedding. */
  protected abstract answer(row: TextRow): R;

  infer(
    inputs: readonly ModelInput[],
    describe: (index: number) => string = (i) => `input ${i} (counting from 0)`,
    options: InferOptions = {},
  ): Promise<R[]> {
    return this.runTexts(
      inputs.map((input, i) => asText(input, describe(i), this.task)),
      describe,
      options,
    );
  }

  /**
   * Prompts by name (sentence-transformers' `prompts`, e.g. `query` → "query: "), put before a
   * text when a request names one; none unless the task records them.
   */
  get prompts(): Readonly<Record<string, string>> {
    return {};
  }

  /** `text` with the prompt `promptName` before it; KILN_ERR_INPUT_UNKNOWN_PROMPT for a name the model lacks. */
  withPrompt(text: string, promptName: string | undefined): string {
    if (promptName === undefined) return text;
    if (!Object.hasOwn(this.prompts, promptName)) {
      const known = Object.keys(this.prompts);
      throw new KilnError('KILN_ERR_INPUT_UNKNOWN_PROMPT', {
        name: promptName,
        model: this.manifest.name,
        known: known.length === 0 ? 'no prompts' : known.map((k) => JSON.stringify(k)).join(', '),
      });
    }
    return this.prompts[promptName] + text;
  }

  /** The tokens of a text with their places in it (TEI's /tokenize); the prompt, when named, is part of the text. */
  tokenize(text: string, options: { addSpecialTokens: boolean; promptName?: string }): TextToken[] {
    return this.tokenizer.tokens(this.withPrompt(text, options.promptName), options);
  }

  /** Token ids back to text; ids outside the vocabulary are refused (KILN_ERR_INPUT_TOKENS, row `row`). */
  decode(ids: readonly number[], options: { skipSpecialTokens: boolean; row?: number }): string {
    const bad = ids.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= this.tokenizer.vocabSize);
    if (bad >= 0)
      throw new KilnError('KILN_ERR_INPUT_TOKENS', {
        row: options.row ?? 0,
        problem: `token ${bad} is ${ids[bad]}, outside the vocabulary's ids 0..${this.tokenizer.vocabSize - 1}`,
      });
    return this.tokenizer.decode(ids, options);
  }

  /** Tokenizes texts and pairs (refusing empty ones), queues each, and answers each from its output row. */
  protected async runTexts(
    texts: readonly TextInput[],
    describe: (index: number) => string,
    options: TextOptions,
  ): Promise<R[]> {
    return (await this.runRows(texts, describe, options)).map((row) => this.answer(row));
  }

  /**
   * Tokenizes texts and pairs (refusing empty ones), queues each, and gives each one's output
   * row: for tasks whose answer reads several rows (a zero-shot text's pair per label).
   */
  protected async runRows(
    texts: readonly TextInput[],
    describe: (index: number) => string,
    options: TextOptions,
  ): Promise<TextRow[]> {
    texts.forEach((text, index) => {
      if (typeof text === 'string') {
        if (text.trim() === '') throw new KilnError('KILN_ERR_INPUT_EMPTY_TEXT', { where: describe(index) });
        return;
      }
      if (text.text.trim() === '')
        throw new KilnError('KILN_ERR_INPUT_EMPTY_TEXT', { where: `${describe(index)}'s "text"` });
      if (text.text_pair.trim() === '')
        throw new KilnError('KILN_ERR_INPUT_EMPTY_TEXT', { where: `${describe(index)}'s "text_pair"` });
    });
    const { promptName, deadline } = options;
    const encoded = texts.map((text, index) =>
      this.encode(
        typeof text === 'string'
          ? this.withPrompt(text, promptName)
          : { ...text, text: this.withPrompt(text.text, promptName) },
        { ...options, where: describe(index) },
      ),
    );
    // One request: shortest first, taking turns with other requests' (Scheduler.submitAll).
    const rows = await this.scheduler.submitAll(encoded, { deadline });
    return rows.map((row, i) => ({ row, tokens: encoded[i]!.ids.length, truncated: encoded[i]!.truncated }));
  }

  /**
   * Runs the windows of several texts (a text longer than max length is read in overlapping
   * windows) as one request, shortest first (Scheduler.submitAll): each text's rows, in its
   * windows' order.
   */
  protected async runWindows(
    windows: ReadonlyArray<readonly EncodedText[]>,
    options: { deadline?: number } = {},
  ): Promise<number[][][]> {
    const rows = await this.scheduler.submitAll(windows.flat(), { deadline: options.deadline });
    const perText: number[][][] = [];
    let from = 0;
    for (const own of windows) {
      perText.push(rows.slice(from, from + own.length));
      from += own.length;
    }
    return perText;
  }

  /**
   * Runs sequences a client tokenized itself (KServe v2 INT64 tensors): each row's ids, without
   * padding. Ids must be in the tokenizer's vocabulary and rows no longer than max length.
   */
  runTokens(
    rows: ReadonlyArray<{ ids: readonly number[]; typeIds?: readonly number[] }>,
    options: { deadline?: number } = {},
  ): Promise<number[][]> {
    const { maxLength } = this.manifest.limits;
    rows.forEach((row, i) => {
      if (row.ids.length === 0 || row.ids.length > maxLength) {
        throw new KilnError('KILN_ERR_INPUT_TOKENS', {
          row: i,
          problem: `it has ${row.ids.length} tokens; a row needs 1 to ${maxLength} (the artifact's max length)`,
        });
      }
      const bad = row.ids.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= this.tokenizer.vocabSize);
      if (bad >= 0)
        throw new KilnError('KILN_ERR_INPUT_TOKENS', {
          row: i,
          problem: `token ${bad} is ${row.ids[bad]}, outside the vocabulary's ids 0..${this.tokenizer.vocabSize - 1}`,
        });
      // An out-of-range type id would fail the whole batch in ONNX Runtime, other clients' rows too.
      const badType = row.typeIds?.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= this.typeVocab) ?? -1;
      if (badType >= 0)
        throw new KilnError('KILN_ERR_INPUT_TOKENS', {
          row: i,
          problem: `token_type_ids ${badType} is ${row.typeIds![badType]}, outside the token types 0..${this.typeVocab - 1}`,
        });
    });
    // One request: shortest first, taking turns with other requests' (Scheduler.submitAll).
    return this.scheduler.submitAll(
      rows.map((row) => ({
        ids: [...row.ids],
        typeIds: row.typeIds ? [...row.typeIds] : row.ids.map(() => 0),
        truncated: false,
      })),
      { deadline: options.deadline },
    );
  }

  inputSize(input: ModelInput): number {
    return input instanceof Uint8Array ? 1 : this.tokenCount(input);
  }

  /** Token count of a text or pair after truncation (special tokens included). */
  tokenCount(text: TextInput): number {
    return this.encode(text, {}).ids.length;
  }

  private encode(
    text: TextInput,
    options: Pick<InferOptions, 'truncate' | 'truncationDirection'> & { where?: string },
  ): EncodedText {
    const { maxLength } = this.manifest.limits;
    const { truncate, truncationDirection, where } = options;
    return typeof text === 'string'
      ? this.tokenizer.encode(text, maxLength, { truncate, truncationDirection, where })
      : this.tokenizer.encodePair(text.text, text.text_pair, maxLength, { truncate, truncationDirection, where });
  }
}

/** Text inputs must be texts or pairs: a text model given image bytes says so. */
function asText(input: ModelInput, where: string, task: string): TextInput {
  if (!(input instanceof Uint8Array)) return input;
  throw new KilnError('KILN_ERR_INPUT_KIND', { where, expected: 'a text', got: 'binary data (an image?)', task });
}
