/**
 * A loaded zero-shot classifier: an NLI sequence classifier (entailment, contradiction and
 * usually neutral) that reads a text and one hypothesis per candidate label as text pairs. A
 * request with N labels is N pairs, each queued on its own, so they are batched with every other
 * request's pairs; the answer is made once all N rows are back.
 */
import { KilnError } from '../../core/errors.js';
import type { Manifest } from '../../model/artifact.js';
import type { InferOptions, ModelInput, ModelOptions } from '../../runtime/task-model.js';
import { TextModel, type TextParts, type TextTokens } from '../../runtime/text-model.js';
import { DEFAULT_MAX_LABELS } from '../limits.js';
import {
  DEFAULT_HYPOTHESIS_TEMPLATE,
  hypotheses,
  type NliLabels,
  nliLabels,
  ranked,
  zeroShotScores,
} from './scores.js';

/** One text to classify into labels chosen by the request. */
export interface ZeroShotRequest {
  text: string;
  /** The candidate labels, in the request's order. */
  labels: readonly string[];
  /** Turns a label into the hypothesis the model reads after the text; `{}` is the label. @defaultValue "This example is {}." */
  template?: string;
  /** Judge each label on its own (entailment against contradiction) instead of sharing 1 among them. @defaultValue false */
  multiLabel?: boolean;
}

/** Hugging Face's zero-shot answer: the text, its labels best first, their scores. */
export interface ZeroShotAnswer extends TextTokens {
  sequence: string;
  labels: string[];
  scores: number[];
}

/** How a zero-shot request is run: the request limits of every text task, and a cap on labels. */
export interface ZeroShotOptions extends InferOptions {
  /** Most candidate labels per text; more are refused (KILN_ERR_INPUT_TOO_MANY_LABELS). @defaultValue {@link DEFAULT_MAX_LABELS} */
  maxLabels?: number;
}

/** A loaded NLI model run as a zero-shot classifier (`task: 'zero-shot-classification'`): `classify(requests)`. */
export class ZeroShotClassifier extends TextModel<ZeroShotAnswer> {
  /** Where the head's entailment and contradiction logits are. */
  readonly nli: NliLabels;

  private constructor(dir: string, manifest: Manifest, parts: TextParts) {
    super(dir, manifest, parts);
    const nli = nliLabels(manifest.labels);
    if (!nli)
      throw new KilnError('KILN_ERR_ARTIFACT_INVALID', {
        path: dir,
        problem: `its task is zero-shot-classification but its labels (${manifest.labels.join(', ')}) name no entailment and contradiction`,
      });
    this.nli = nli;
  }

  get task(): 'zero-shot-classification' {
    return 'zero-shot-classification';
  }

  static async open(dir: string, manifest: Manifest, options: ModelOptions): Promise<ZeroShotClassifier> {
    return new ZeroShotClassifier(dir, manifest, await TextModel.start(dir, manifest, options));
  }

  /**
   * Classifies each text into its request's labels. `describe(i)` names request i in errors
   * ("line 5 of reviews.jsonl").
   */
  async classify(
    requests: readonly ZeroShotRequest[],
    describe: (index: number) => string = (i) => `text ${i} (counting from 0)`,
    options: ZeroShotOptions = {},
  ): Promise<ZeroShotAnswer[]> {
    const { maxLabels = DEFAULT_MAX_LABELS, ...inferOptions } = options;
    const pairs = requests.map((request, r) => {
      checkRequest(request, describe(r), maxLabels);
      const template = request.template ?? DEFAULT_HYPOTHESIS_TEMPLATE;
      return hypotheses(request.labels, template).map((hypothesis, l) => ({
        pair: { text: request.text, text_pair: hypothesis },
        where: `${describe(r)} with the candidate label ${JSON.stringify(request.labels[l])}`,
      }));
    });
    const flat = pairs.flat();
    const rows = await this.runRows(
      flat.map((p) => p.pair),
      (i) => flat[i]!.where,
      inferOptions,
    );
    let next = 0;
    return requests.map((request) => {
      const mine = rows.slice(next, next + request.labels.length);
      next += request.labels.length;
      const scores = zeroShotScores(
        mine.map((m) => m.row),
        this.nli,
        request.multiLabel ?? false,
      );
      return {
        sequence: request.text,
        ...ranked(request.labels, scores),
        tokens: mine.reduce((n, m) => n + m.tokens, 0),
        truncated: mine.some((m) => m.truncated),
      };
    });
  }

  /**
   * Inputs as files and `kiln run` give them: a pair of the text and its candidate labels
   * (comma-separated, or a JSON list), with the default template, single-label.
   */
  override infer(
    inputs: readonly ModelInput[],
    describe: (index: number) => string = (i) => `input ${i} (counting from 0)`,
    options: ZeroShotOptions = {},
  ): Promise<ZeroShotAnswer[]> {
    const requests = inputs.map((input, i): ZeroShotRequest => {
      if (typeof input === 'object' && !(input instanceof Uint8Array))
        return { text: input.text, labels: parseLabels(input.text_pair, describe(i)) };
      throw new KilnError('KILN_ERR_INPUT_CANDIDATE_LABELS', {
        where: describe(i),
        problem:
          input instanceof Uint8Array
            ? 'it is binary data (an image?), not a text with its labels'
            : 'it is a text without candidate labels',
      });
    });
    return this.classify(requests, describe, options);
  }

  /** Token count of a text with its first label's hypothesis, for ordering work by size. */
  override inputSize(input: ModelInput): number {
    if (typeof input !== 'object' || input instanceof Uint8Array) return super.inputSize(input);
    return this.tokenCount(input) * Math.max(1, input.text_pair.split(',').length);
  }

  /** Never called: a zero-shot answer reads all of its labels' rows (see classify). */
  protected answer(): never {
    throw new Error('a zero-shot answer is made from all of its labels’ rows, not from one row');
  }
}

/**
 * Candidate labels given as one string, as Hugging Face's pipeline reads it: a JSON list of
 * strings (how `kiln batch` carries a JSON Lines list), else comma-separated labels, each
 * trimmed, empty ones dropped.
 */
export function parseLabels(value: string, where: string): string[] {
  const text = value.trim();
  if (text.startsWith('[')) {
    try {
      const list = JSON.parse(text) as unknown;
      if (Array.isArray(list) && list.every((l) => typeof l === 'string')) return list;
    } catch {
      // Not JSON: a label may start with a bracket.
    }
  }
  const labels = text
    .split(',')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  if (labels.length === 0)
    throw new KilnError('KILN_ERR_INPUT_CANDIDATE_LABELS', {
      where,
      problem: `${JSON.stringify(value)} names no label`,
    });
  return labels;
}

/** The request's text, labels and template are usable: coded 400s (413 for too many labels) otherwise. */
function checkRequest(request: ZeroShotRequest, where: string, maxLabels: number): void {
  if (request.text.trim() === '') throw new KilnError('KILN_ERR_INPUT_EMPTY_TEXT', { where: `${where}'s text` });
  const { labels } = request;
  if (labels.length === 0)
    throw new KilnError('KILN_ERR_INPUT_CANDIDATE_LABELS', { where, problem: 'it has no candidate labels' });
  if (labels.length > maxLabels)
    throw new KilnError('KILN_ERR_INPUT_TOO_MANY_LABELS', { count: labels.length, limit: maxLabels });
  const empty = labels.findIndex((l) => l.trim() === '');
  if (empty >= 0)
    throw new KilnError('KILN_ERR_INPUT_CANDIDATE_LABELS', {
      where,
      problem: `candidate label ${empty} (counting from 0) is empty`,
    });
  const template = request.template ?? DEFAULT_HYPOTHESIS_TEMPLATE;
  if (!template.includes('{}')) throw new KilnError('KILN_ERR_INPUT_HYPOTHESIS_TEMPLATE', { template });
}
