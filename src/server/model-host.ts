import { KilnError } from '../core/errors.js';
import type { LoadedModel } from '../runtime/load-model.js';

/**
 * Holds the served models through their life: loading (routes answer 503 NOT_READY), ready,
 * draining after a stop signal (health checks answer 503 so load balancers stop sending work,
 * while requests already accepted still reach their models), closed. One model, or several
 * from a model repository (`kiln serve DIR`), each under its artifact's name.
 */
export class ModelHost {
  private readonly models = new Map<string, LoadedModel>();
  private drainSignal: string | null = null;

  /** Ready for new work: loaded and not draining. */
  isReady(): boolean {
    return this.models.size > 0 && this.drainSignal === null;
  }

  /** The signal (or reason) the server is draining for, or null. */
  get draining(): string | null {
    return this.drainSignal;
  }

  /** Adds a model under its manifest's name (replacing one of the same name). */
  set(model: LoadedModel): void {
    this.models.set(model.manifest.name, model);
  }

  /** Names of the served models, in the order they were added. */
  names(): string[] {
    return [...this.models.keys()];
  }

  all(): LoadedModel[] {
    return [...this.models.values()];
  }

  /**
   * The model named `name`; without a name, the only one. KILN_ERR_HTTP_NOT_READY while
   * loading (DRAINING once closed), KILN_ERR_HTTP_UNKNOWN_MODEL for a name not served,
   * KILN_ERR_HTTP_MODEL_REQUIRED when several are served and no name is given.
   */
  ready(name?: string): LoadedModel {
    if (this.models.size === 0) {
      if (this.drainSignal !== null) throw new KilnError('KILN_ERR_HTTP_DRAINING', { signal: this.drainSignal });
      throw new KilnError('KILN_ERR_HTTP_NOT_READY', {});
    }
    if (name !== undefined) {
      const found = this.models.get(name);
      if (!found) throw new KilnError('KILN_ERR_HTTP_UNKNOWN_MODEL', { model: name, served: this.names().join(', ') });
      return found;
    }
    if (this.models.size > 1) throw new KilnError('KILN_ERR_HTTP_MODEL_REQUIRED', { served: this.names().join(', ') });
    return this.models.values().next().value!;
  }

  /** The error health checks and new requests get now (not ready or draining), or null when ready. */
  unavailable(): KilnError | null {
    if (this.drainSignal !== null) return new KilnError('KILN_ERR_HTTP_DRAINING', { signal: this.drainSignal });
    if (this.models.size === 0) return new KilnError('KILN_ERR_HTTP_NOT_READY', {});
    return null;
  }

  /** Turns health checks to 503; accepted work still reaches the models until close(). */
  startDraining(signal: string): void {
    this.drainSignal ??= signal;
  }

  /** Finishes every model's queued work, then stops its replicas. */
  async close(): Promise<void> {
    this.drainSignal ??= 'closed';
    const models = this.all();
    this.models.clear();
    await Promise.all(models.map((m) => m.close()));
  }
}
