import { KilnError } from '../core/errors.js';
import type { TextClassifier } from '../runtime/text-classifier.js';

/** Holds the served model; routes ask it for the classifier and get 503 while it loads. */
export class ModelHost {
  private classifier: TextClassifier | null = null;

  isReady(): boolean {
    return this.classifier !== null;
  }

  set(classifier: TextClassifier): void {
    this.classifier = classifier;
  }

  /** The loaded classifier, or KILN_ERR_HTTP_NOT_READY. */
  ready(): TextClassifier {
    if (!this.classifier) throw new KilnError('KILN_ERR_HTTP_NOT_READY', {});
    return this.classifier;
  }

  async close(): Promise<void> {
    const c = this.classifier;
    this.classifier = null;
    await c?.close();
  }
}
