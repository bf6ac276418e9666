import { KilnError } from '../core/errors.js';
import type { TextClassifier } from '../runtime/text-classifier.js';

/**
 * Holds the served model through its life: loading (routes answer 503 NOT_READY), ready,
 * draining after a stop signal (health checks answer 503 so load balancers stop sending work,
 * while requests already accepted still reach the classifier), closed.
 */
export class ModelHost {
  private classifier: TextClassifier | null = null;
  private drainSignal: string | null = null;

  /** Ready for new work: loaded and not draining. */
  isReady(): boolean {
    return this.classifier !== null && this.drainSignal === null;
  }

  /** The signal (or reason) the server is draining for, or null. */
  get draining(): string | null {
    return this.drainSignal;
  }

  set(classifier: TextClassifier): void {
    this.classifier = classifier;
  }

  /** The loaded classifier, or KILN_ERR_HTTP_NOT_READY while loading (KILN_ERR_HTTP_DRAINING once closed). */
  ready(): TextClassifier {
    if (this.classifier) return this.classifier;
    if (this.drainSignal !== null) throw new KilnError('KILN_ERR_HTTP_DRAINING', { signal: this.drainSignal });
    throw new KilnError('KILN_ERR_HTTP_NOT_READY', {});
  }

  /** The error health checks and new requests get now (not ready or draining), or null when ready. */
  unavailable(): KilnError | null {
    if (this.drainSignal !== null) return new KilnError('KILN_ERR_HTTP_DRAINING', { signal: this.drainSignal });
    if (!this.classifier) return new KilnError('KILN_ERR_HTTP_NOT_READY', {});
    return null;
  }

  /** Turns health checks to 503; accepted work still reaches the classifier until close(). */
  startDraining(signal: string): void {
    this.drainSignal ??= signal;
  }

  /** Finishes the classifier's queued work, then stops its replicas. */
  async close(): Promise<void> {
    this.drainSignal ??= 'closed';
    const c = this.classifier;
    this.classifier = null;
    await c?.close();
  }
}
