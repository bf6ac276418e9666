/**
 * What a route is: its method and path, who may call it, the bodies it reads and their size
 * limits, and, for inference routes, the tasks it serves and how a request names its model.
 * Route modules describe their routes with {@link defineRoute}; route-table.ts lists them all
 * and is the only place the server, the API key check, the drain, the early refusal, the
 * timeout and the body limits read these facts from.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest, FastifySchema, RouteGenericInterface } from 'fastify';
import type { Task } from '../model/artifact.js';
import type { LoadedModel } from '../runtime/load-model.js';
import type { RequestLimits } from './limits.js';
import type { ServerMetrics } from './metrics.js';
import type { ModelHost } from './model-host.js';

/**
 * Who may call a route when the server has an API key:
 * - `probe`: anyone. Health checks, which probes call without a key; they answer (503) while draining.
 * - `key`: requests with the key in a header (`authorization: Bearer` or `x-api-key`).
 * - `page`: the same, or the key as `?key=`: pages a browser opens by address, which cannot
 *   carry a header. Nowhere else, as a key in a URL ends up in browser history and proxy logs.
 */
export type Access = 'probe' | 'key' | 'page';

/** A body a route reads besides JSON (fastify's own parser), with its own size limit. */
export interface BodyParser {
  types: ReadonlyArray<string | RegExp>;
  parseAs: 'string' | 'buffer';
  /** Largest body of these types, in bytes. @defaultValue the server's body limit */
  bodyLimit?: number;
  /** What the handler reads as `request.body`. @defaultValue the string or buffer itself */
  parse?: (body: string | Buffer) => unknown;
}

/** What an inference request says before its body is read: its path parameters and headers. */
export interface RequestHead {
  params: Readonly<Record<string, string | undefined>>;
  headers: IncomingHttpHeaders;
}

export interface InferenceFacts<T extends Task = Task> {
  /** Tasks whose models the route serves. */
  tasks: readonly T[];
  /**
   * The model a request names before its body is read (in the path or a header), so the early
   * refusal can judge it; undefined when the body names it, or names none.
   */
  target?: (head: RequestHead) => string | undefined;
}

/** What a handler gets besides its request and reply. */
export interface RouteContext<T extends Task = Task> {
  readonly host: ModelHost;
  readonly limits: RequestLimits;
  readonly metrics: ServerMetrics;
  /**
   * When the request's time is up (a `performance.now()` value): the scheduler drops its inputs
   * still queued then. Undefined without `--timeout-ms`, and on routes that run no model.
   */
  readonly deadline: number | undefined;
  /**
   * The model `name` (the only one when undefined) when its task is one this route serves, or
   * one of `only.tasks` for the part of the route (`only.what`) that serves fewer;
   * KILN_ERR_HTTP_WRONG_TASK otherwise, naming the routes that serve it.
   */
  model(name: string | undefined): Extract<LoadedModel, { task: T }>;
  model<U extends T>(
    name: string | undefined,
    only: { tasks: readonly U[]; what: string },
  ): Extract<LoadedModel, { task: U }>;
}

export interface RouteSpec<G extends RouteGenericInterface = RouteGenericInterface, T extends Task = Task> {
  method: 'GET' | 'POST';
  /** fastify's path pattern (`/v2/models/:name/infer`); also the route label in the metrics. */
  url: string;
  access: Access;
  /** Bodies besides JSON. */
  parsers?: readonly BodyParser[];
  schema?: FastifySchema;
  /** The body the route takes, shown in the fix of KILN_ERR_HTTP_INVALID_BODY. */
  expectedBody?: string;
  /** Present on routes that queue model work: they get the early refusal and `--timeout-ms`. */
  inference?: InferenceFacts<T>;
  handler(request: FastifyRequest<G>, reply: FastifyReply, context: RouteContext<T>): Promise<unknown>;
}

/**
 * A route spec with its request types checked against its handler, for the table's list. The
 * widening is sound as the table uses it: fastify validates the body against `schema`, and the
 * context's `model()` admits only the route's `tasks` (T).
 */
export function defineRoute<G extends RouteGenericInterface = RouteGenericInterface, T extends Task = Task>(
  spec: RouteSpec<G, T>,
): RouteSpec {
  return spec as unknown as RouteSpec;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The spec a route was registered from; absent for the not-found handler. */
    route?: RouteSpec;
  }
}

/** A route's path as users read it: `/v2/models/{name}/infer`. */
export function displayPath(url: string): string {
  return url.replace(/:(\w+)/g, '{$1}');
}

/** The largest body `route` accepts with `contentType`: its parser's limit, or `fallback` (the server's). */
export function bodyLimitOf(route: RouteSpec | undefined, contentType: string | undefined, fallback: number): number {
  const mediaType = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const parser = route?.parsers?.find((p) =>
    p.types.some((type) => (typeof type === 'string' ? type === mediaType : type.test(mediaType))),
  );
  return parser?.bodyLimit ?? fallback;
}
