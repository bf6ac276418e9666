/**
 * Every route the server answers, in one list, and what is derived from it: the registration
 * (with each route's body parsers and limits, and `--timeout-ms` around every inference route),
 * the route an early refusal judges a raw request by, the task check and the route lists that
 * errors name. The API key check and the drain read each route's access from the spec fastify
 * matched (route.ts).
 */
import type { FastifyInstance, RouteOptions } from 'fastify';
import { KilnError } from '../core/errors.js';
import { TASKS, type Task } from '../model/artifact.js';
import type { RequestLimits } from '../tasks/limits.js';
import { type LoadedModel, TASK_MODULES } from '../tasks/registry.js';
import { displayPath, type RequestHead, type RouteContext, type RouteSpec } from '../tasks/route.js';
import { runWithin } from './limits.js';
import type { ServerMetrics } from './metrics.js';
import type { ModelHost } from './model-host.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { infoRoutes } from './routes/info.js';
import { invocationsRoutes } from './routes/invocations.js';
import { kserveRoutes } from './routes/kserve.js';
import { metricsRoutes } from './routes/metrics.js';
import { pingRoutes } from './routes/ping.js';
import { predictRoutes } from './routes/predict.js';
import { statsRoutes } from './routes/stats.js';
import { tokenizerRoutes } from './routes/tokenizer.js';

export const ROUTES: readonly RouteSpec[] = [
  ...pingRoutes,
  ...predictRoutes,
  // The routes only one task serves.
  ...TASK_MODULES.flatMap((task) => task.routes),
  ...tokenizerRoutes,
  ...infoRoutes,
  ...invocationsRoutes,
  ...statsRoutes,
  ...dashboardRoutes,
  ...metricsRoutes,
  ...kserveRoutes,
];

const describeRoute = (route: RouteSpec): string => `${route.method} ${displayPath(route.url)}`;

/** `a, b and c` (or `or`). */
function listed(items: readonly string[], last: 'and' | 'or'): string {
  return items.length < 2 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} ${last} ${items.at(-1)}`;
}

/** Every route, for the not-found error. */
export const ROUTE_LIST = listed(ROUTES.map(describeRoute), 'and');

/** The routes that serve a task's models, for the wrong-task error. */
function servedBy(task: Task): string {
  return listed(ROUTES.filter((r) => r.inference?.tasks.includes(task)).map(describeRoute), 'or');
}

/** The inference routes with their path as a pattern whose named groups are the path parameters. */
const INFERENCE_PATHS = ROUTES.filter((route) => route.inference !== undefined).map((route) => ({
  route,
  pattern: new RegExp(
    `^${route.url
      .split('/')
      .map((segment) =>
        segment.startsWith(':') ? `(?<${segment.slice(1)}>[^/]+)` : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
      )
      .join('/')}$`,
  ),
}));

/**
 * The inference route a raw request is for, with its decoded path parameters: what fastify's
 * router would find, for the requests that are judged before fastify sees them. Null for other
 * routes and for a parameter that is not valid percent-encoding (fastify answers those).
 */
export function inferenceRouteOf(
  method: string | undefined,
  path: string,
): { route: RouteSpec; params: RequestHead['params'] } | null {
  for (const { route, pattern } of INFERENCE_PATHS) {
    if (route.method !== method) continue;
    const match = pattern.exec(path);
    if (match === null) continue;
    try {
      const params = Object.fromEntries(
        Object.entries(match.groups ?? {}).map(([key, value]) => [key, decodeURIComponent(value)]),
      );
      return { route, params };
    } catch {
      return null;
    }
  }
  return null;
}

/** What every handler shares. */
export interface Shared {
  host: ModelHost;
  limits: RequestLimits;
  metrics: ServerMetrics;
}

/** The model `name` if its task is one `route` (or `only`) serves; KILN_ERR_HTTP_WRONG_TASK otherwise. */
function modelFor(
  host: ModelHost,
  route: RouteSpec,
  name: string | undefined,
  only?: { tasks: readonly Task[]; what: string },
): LoadedModel {
  const model = host.ready(name);
  const tasks = only?.tasks ?? route.inference?.tasks ?? TASKS;
  if (!tasks.includes(model.task)) {
    throw new KilnError('KILN_ERR_HTTP_WRONG_TASK', {
      model: model.manifest.name,
      task: model.task,
      route: only?.what ?? describeRoute(route),
      serves: tasks.join(', '),
      use: servedBy(model.task),
    });
  }
  return model;
}

/** fastify's handler for `route`: an inference route's runs within the request's `--timeout-ms`. */
function handlerOf(route: RouteSpec, shared: Shared): RouteOptions['handler'] {
  const context = (deadline: number | undefined): RouteContext => ({
    ...shared,
    deadline,
    model: ((name: string | undefined, only?: { tasks: readonly Task[]; what: string }) =>
      modelFor(shared.host, route, name, only)) as RouteContext['model'],
  });
  if (!route.inference) return (request, reply) => route.handler(request, reply, context(undefined));
  return (request, reply) =>
    runWithin(shared.limits.timeoutMs, reply.elapsedTime, (deadline) =>
      route.handler(request, reply, context(deadline)),
    );
}

/** Registers every route; one with parsers of its own gets a scope, so they apply to it alone. */
export function installRoutes(app: FastifyInstance, shared: Shared): void {
  for (const route of ROUTES) {
    const options: RouteOptions = {
      method: route.method,
      url: route.url,
      schema: route.schema,
      config: { route },
      handler: handlerOf(route, shared),
    };
    const { parsers } = route;
    if (parsers === undefined) {
      app.route(options);
      continue;
    }
    void app.register(async (scope) => {
      for (const parser of parsers) {
        for (const type of parser.types) {
          scope.addContentTypeParser(
            type,
            { parseAs: parser.parseAs, ...(parser.bodyLimit === undefined ? {} : { bodyLimit: parser.bodyLimit }) },
            (_request, body, done) => done(null, parser.parse ? parser.parse(body) : body),
          );
        }
      }
      scope.route(options);
    });
  }
}
