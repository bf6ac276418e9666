import type { RequestLimits } from '../limits.js';
import type { ModelHost } from '../model-host.js';

/** What every route needs: the model and the per-request limits. */
export interface RouteContext {
  host: ModelHost;
  limits: RequestLimits;
}
