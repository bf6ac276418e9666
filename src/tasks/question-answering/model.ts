/**
 * A loaded question-answering artifact: an encoder with a span head that reads a question and
 * its context as a text pair and answers each token's start and end logits (one row per window,
 * `span_logits`: starts then ends, padded to the max length). A context longer than the max length
 * is read in overlapping windows, each with the question, each queued on its own; the answer is
 * the best span over all of them, as an offset range of the context.
 */
import { KilnError } from '../../core/errors.js';
import type { Manifest } from '../../model/artifact.js';
import type { EncodedText } from '../../model/tokenizer.js';
import type { InferOptions, ModelInput, ModelOptions } from '../../runtime/task-model.js';
import { TextModel, type TextParts, type TextTokens } from '../../runtime/text-model.js';
import {
  DEFAULT_MAX_ANSWER_LEN,
  defaultStride,
  MAX_ANSWER_LEN_LIMIT,
  MAX_TOP_K,
  type ScoredSpan,
  windowSpans,
  windowStarts,
} from './spans.js';

/** One question about one context. */
export interface QuestionRequest {
  question: string;
  context: string;
  /** How many answers, best first. @defaultValue 1 */
  topK?: number;
  /** Longest answer, in tokens. @defaultValue 15 */
  maxAnswerLen?: number;
  /** Tokens two windows of a long context share. @defaultValue 128, or half the context's room in a window when less */
  docStride?: number;
  /** Also consider "no answer" (the empty answer at 0–0, scored by the first token). @defaultValue false */
  handleImpossibleAnswer?: boolean;
}

/** One answer: the context's text from `start` to `end` (JavaScript string indices, UTF-16 code units). */
export interface Answer {
  answer: string;
  score: number;
  start: number;
  end: number;
}

/** A question's answers, best first (at most top_k), and what the tokenizer made of it. */
export interface Answers extends TextTokens {
  answers: Answer[];
  /** Windows the context was read in. */
  windows: number;
}

/** A loaded extractive question-answering model (`task: 'question-answering'`): `ask(requests)`. */
export class QuestionAnswerer extends TextModel<Answers> {
  private constructor(dir: string, manifest: Manifest, parts: TextParts) {
    super(dir, manifest, parts);
  }

  get task(): 'question-answering' {
    return 'question-answering';
  }

  static async open(dir: string, manifest: Manifest, options: ModelOptions): Promise<QuestionAnswerer> {
    return new QuestionAnswerer(dir, manifest, await TextModel.start(dir, manifest, options));
  }

  /** Answers each question from its context. `describe(i)` names request i in errors. */
  async ask(
    requests: readonly QuestionRequest[],
    describe: (index: number) => string = (i) => `question ${i} (counting from 0)`,
    options: Pick<InferOptions, 'deadline'> = {},
  ): Promise<Answers[]> {
    const { maxLength } = this.manifest.limits;
    const specials = this.tokenizer.pairSpecialTokens ?? 0;
    const plans = requests.map((request, r) => {
      const where = describe(r);
      const { topK = 1, maxAnswerLen = DEFAULT_MAX_ANSWER_LEN, docStride } = request;
      checkInteger('top_k', topK, 1, MAX_TOP_K);
      checkInteger('max_answer_len', maxAnswerLen, 1, MAX_ANSWER_LEN_LIMIT);
      if (request.question.trim() === '')
        throw new KilnError('KILN_ERR_INPUT_EMPTY_TEXT', { where: `${where}'s question` });
      if (request.context.trim() === '')
        throw new KilnError('KILN_ERR_INPUT_EMPTY_TEXT', { where: `${where}'s context` });
      const question = this.tokenizer.bareIds(request.question);
      const room = maxLength - specials - question.length;
      if (room < 1)
        throw new KilnError('KILN_ERR_INPUT_QUESTION_TOO_LONG', {
          where: `${where}'s question`,
          tokens: question.length,
          specials,
          limit: maxLength,
        });
      const stride = docStride ?? defaultStride(room);
      if (docStride !== undefined)
        checkInteger(
          'doc_stride',
          docStride,
          0,
          room - 1,
          `(the context's room in a window of this question: ${room} tokens)`,
        );
      const context = this.tokenizer.spans(request.context);
      // Characters the tokenizer drops (a zero-width space, control characters) leave no span to answer.
      if (context.ids.length === 0)
        throw new KilnError('KILN_ERR_INPUT_EMPTY_TEXT', {
          where: `${where}'s context (only characters the tokenizer drops)`,
        });
      const windows = windowStarts(context.ids.length, room, stride).map((from) => {
        const ids = context.ids.slice(from, from + room);
        const laid = this.tokenizer.layoutPair(question, ids);
        return { from, count: ids.length, laid };
      });
      return { request, context, windows, topK, maxAnswerLen };
    });
    // One request: its questions' windows take turns with other requests' (TextModel.runWindows).
    const rows = await this.runWindows(
      plans.map((plan) =>
        plan.windows.map((w): EncodedText => ({ ids: w.laid.ids, typeIds: w.laid.typeIds, truncated: false })),
      ),
      options,
    );
    return plans.map((plan, r) => {
      const { request, context, windows, topK, maxAnswerLen } = plan;
      // A word's span in the context: from its first token's start to its last token's end.
      const wordStart = new Map<number, number>();
      const wordEnd = new Map<number, number>();
      context.words.forEach((word, t) => {
        wordStart.set(word, Math.min(wordStart.get(word) ?? Number.POSITIVE_INFINITY, context.starts[t]!));
        wordEnd.set(word, Math.max(wordEnd.get(word) ?? 0, context.ends[t]!));
      });
      const answers: Answer[] = [];
      let nullScore = Number.POSITIVE_INFINITY;
      windows.forEach((w, i) => {
        const row = rows[r]![i]!;
        const half = row.length / 2;
        const { spans, nullScore: none } = windowSpans(
          {
            start: row.slice(0, half),
            end: row.slice(half),
            contextFrom: w.laid.secondStart,
            contextTo: w.laid.secondStart + w.count,
            cls: w.laid.clsIndex,
          },
          { topK, maxAnswerLen },
        );
        if (none !== null) nullScore = Math.min(nullScore, none);
        for (const span of spans)
          answers.push(this.toAnswer(span, w.from - w.laid.secondStart, context, wordStart, wordEnd, request.context));
      });
      if (request.handleImpossibleAnswer && Number.isFinite(nullScore))
        answers.push({ answer: '', score: nullScore, start: 0, end: 0 });
      // Stable: on equal scores the earlier window's answer stays first.
      answers.sort((a, b) => b.score - a.score);
      return {
        answers: answers.slice(0, topK),
        windows: windows.length,
        tokens: windows.reduce((n, w) => n + w.laid.ids.length, 0),
        truncated: false,
      };
    });
  }

  /** A window's span as an answer: token positions → context tokens → their words' offsets. */
  private toAnswer(
    span: ScoredSpan,
    shift: number,
    context: { words: number[] },
    wordStart: ReadonlyMap<number, number>,
    wordEnd: ReadonlyMap<number, number>,
    text: string,
  ): Answer {
    const start = wordStart.get(context.words[span.start + shift]!)!;
    const end = wordEnd.get(context.words[span.end + shift]!)!;
    return { answer: text.slice(start, end), score: span.score, start, end };
  }

  /**
   * Inputs as files and `kiln run` give them: a pair of the question (`text`) and its context
   * (`text_pair`), with the pipeline's defaults.
   */
  override infer(
    inputs: readonly ModelInput[],
    describe: (index: number) => string = (i) => `input ${i} (counting from 0)`,
    options: Pick<InferOptions, 'deadline'> = {},
  ): Promise<Answers[]> {
    const requests = inputs.map((input, i): QuestionRequest => {
      if (typeof input === 'object' && !(input instanceof Uint8Array))
        return { question: input.text, context: input.text_pair };
      throw new KilnError('KILN_ERR_INPUT_KIND', {
        where: describe(i),
        expected: 'a question and its context (a text pair: the question first)',
        got: input instanceof Uint8Array ? 'binary data (an image?)' : 'a single text',
        task: this.task,
      });
    });
    return this.ask(requests, describe, options);
  }

  /** Never called: an answer reads all of its windows' rows (see ask). */
  protected answer(): never {
    throw new Error('a question’s answer is made from all of its windows’ rows, not from one row');
  }
}

function checkInteger(option: string, value: number, min: number, max: number, why = ''): void {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new KilnError('KILN_ERR_INPUT_ANSWER_OPTION', {
      option,
      value,
      rule: `an integer from ${min} to ${max}${why ? ` ${why}` : ''}`,
    });
}
