/**
 * A loaded token-classification artifact (NER, PII detection): each token of a text gets a
 * label, and tokens are grouped into entities with offsets into the text. The replicas answer a
 * row per window, the padded sequence × labels of the graph's [batch, sequence, labels] logits;
 * softmax, windows and grouping run here.
 */
import { KilnError } from '../../core/errors.js';
import { softmax } from '../../core/stats.js';
import type { Manifest } from '../../model/artifact.js';
import type { InferOptions, ModelInput, ModelOptions } from '../../runtime/task-model.js';
import { TextModel, type TextParts, type TextRow, type TextTokens } from '../../runtime/text-model.js';
import {
  AGGREGATION_STRATEGIES,
  type AggregationStrategy,
  aggregate,
  type Entity,
  redact,
  type ScoredToken,
} from './aggregate.js';
import { defaultStride, ownerOfEachToken, windowsOf } from './windows.js';

/** How a request's tokens become entities. */
export interface TokenOptions extends InferOptions {
  /** How tokens are grouped (aggregate.ts). @defaultValue 'none' */
  aggregationStrategy?: AggregationStrategy;
  /** Labels left out of the answer. @defaultValue ['O'] */
  ignoreLabels?: readonly string[];
  /** Tokens shared by consecutive windows of a text longer than max length. @defaultValue a quarter of a window, at most 128 */
  stride?: number;
}

/** What a text's tokens were found to be. */
export interface TokenAnswer extends TextTokens {
  /** The text the offsets point into. */
  text: string;
  entities: Entity[];
  /** The text with each entity replaced by `[LABEL]`, when asked (`redact`). */
  redacted?: string;
  /** Windows the text was read in (1 when it fits in max length). */
  windows: number;
}

/** A loaded token classifier (`task: 'token-classification'`): `recognize(texts)` finds each text's entities. */
export class TokenClassifier extends TextModel<TokenAnswer> {
  private constructor(dir: string, manifest: Manifest, parts: TextParts) {
    super(dir, manifest, parts);
  }

  get task(): 'token-classification' {
    return 'token-classification';
  }

  static async open(dir: string, manifest: Manifest, options: ModelOptions): Promise<TokenClassifier> {
    return new TokenClassifier(dir, manifest, await TextModel.start(dir, manifest, options));
  }

  /** Text tokens one window holds: max length less the special tokens around a text. */
  get windowRoom(): number {
    const { leading, trailing } = this.tokenizer.specialsAround;
    return this.manifest.limits.maxLength - leading - trailing;
  }

  /** Checks a request's options, so that a bad one fails before any text is queued. */
  checkOptions(options: TokenOptions): void {
    const strategy = options.aggregationStrategy;
    if (strategy !== undefined && !(AGGREGATION_STRATEGIES as readonly string[]).includes(strategy))
      throw new KilnError('KILN_ERR_INPUT_AGGREGATION', {
        value: String(strategy),
        known: AGGREGATION_STRATEGIES.map((s) => JSON.stringify(s)).join(', '),
      });
    const { stride } = options;
    const max = this.windowRoom - 1;
    if (stride !== undefined && (!Number.isInteger(stride) || stride < 0 || stride > max))
      throw new KilnError('KILN_ERR_INPUT_STRIDE', { value: stride, max, maxLength: this.manifest.limits.maxLength });
  }

  override async infer(
    inputs: readonly ModelInput[],
    describe: (index: number) => string = (i) => `input ${i} (counting from 0)`,
    options: TokenOptions = {},
  ): Promise<TokenAnswer[]> {
    const texts = inputs.map((input, i) => {
      if (typeof input === 'string') return input;
      throw new KilnError('KILN_ERR_INPUT_KIND', {
        where: describe(i),
        expected: 'a text',
        got: input instanceof Uint8Array ? 'binary data (an image?)' : 'a text pair',
        task: this.task,
      });
    });
    return this.recognize(texts, describe, options);
  }

  /**
   * Finds the entities of each text. A text longer than max length is read in overlapping
   * windows, each queued on its own (and batched with whatever else is waiting).
   */
  async recognize(
    texts: readonly string[],
    describe: (index: number) => string = (i) => `text ${i} (counting from 0)`,
    options: TokenOptions = {},
  ): Promise<TokenAnswer[]> {
    this.checkOptions(options);
    texts.forEach((text, index) => {
      if (text.trim() === '') throw new KilnError('KILN_ERR_INPUT_EMPTY_TEXT', { where: describe(index) });
    });
    const room = this.windowRoom;
    const stride = options.stride ?? defaultStride(room);
    const { leading, trailing } = this.tokenizer.specialsAround;
    const labels = this.labels;
    const plans = texts.map((text) => {
      const spanned = this.tokenizer.spannedTokens(text);
      return { text, spanned, windows: windowsOf(spanned.ids.length, room, stride) };
    });
    // One request: its texts' windows take turns with other requests' (TextModel.runWindows).
    const perText = await this.runWindows(
      plans.map(({ spanned, windows }) =>
        windows.map((w) => ({ ...this.tokenizer.withSpecials(spanned.ids.slice(w.start, w.end)), truncated: false })),
      ),
      options,
    );
    return plans.map(({ text, spanned, windows }, i) => {
      const own = perText[i]!;
      const count = spanned.ids.length;
      const owners = ownerOfEachToken(count, windows);
      const width = labels.length;
      const tokens: ScoredToken[] = spanned.ids.map((_, t) => {
        const k = owners[t]!;
        const at = (leading + t - windows[k]!.start) * width;
        const span = spanned.spans[t];
        return {
          index: leading + t,
          // Always softmax, whatever the head's problem type, as the pipeline scores tokens.
          scores: softmax(own[k]!.slice(at, at + width)),
          start: span?.start ?? null,
          end: span?.end ?? null,
          subword: spanned.subword[t]!,
          token: spanned.tokens[t]!,
        };
      });
      const entities = aggregate(text, tokens, labels, options.aggregationStrategy ?? 'none', options.ignoreLabels);
      return {
        text,
        entities,
        ...(options.redact ? { redacted: redact(text, entities) } : {}),
        windows: windows.length,
        tokens: count + leading + trailing,
        truncated: false,
      };
    });
  }

  /** Unused: windows are answered by {@link recognize}, which needs more than one row. */
  protected answer(_row: TextRow): TokenAnswer {
    throw new Error('TokenClassifier answers through recognize()');
  }

  /** Per-token logits of rows a client tokenized itself: tokens × labels each. */
  async tokenLogits(
    rows: ReadonlyArray<{ ids: readonly number[]; typeIds?: readonly number[] }>,
    options: { deadline?: number } = {},
  ): Promise<number[][][]> {
    const width = this.labels.length;
    return (await this.runTokens(rows, options)).map((row, i) =>
      rows[i]!.ids.map((_, t) => row.slice(t * width, (t + 1) * width)),
    );
  }
}
