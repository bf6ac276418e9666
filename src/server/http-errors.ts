/**
 * Every error a client sees has one body: `{"error": {"code", "message"}}`, with the status from
 * the error table, except where a protocol fixes its own: KServe v2 routes answer `{"error": "…"}`.
 * Every error response also carries the code in the `kiln-error-code` header, and a queue-full
 * 429 carries `Retry-After`. Framework errors (bad JSON, schema, size, media type) are mapped
 * onto kiln codes, and a bad body on a SageMaker or KServe route gets that protocol's code, whose
 * message shows that protocol's request.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { KilnError, toKilnError } from '../core/errors.js';
import { debug } from '../core/log.js';
import { bodyLimitOf } from './route.js';

/** Seconds a client should wait after a queue-full 429: the queue turns over in milliseconds. */
const RETRY_AFTER_SECONDS = 1;

type Protocol = 'kiln' | 'kserve' | 'sagemaker';

function protocolOf(url: string): Protocol {
  const path = url.split('?')[0] ?? '';
  if (path === '/v2' || path.startsWith('/v2/')) return 'kserve';
  if (path === '/invocations') return 'sagemaker';
  return 'kiln';
}

function toHttpError(err: FastifyError | KilnError | Error, bodyLimit: number, contentType?: string): KilnError {
  if (err instanceof KilnError) return err;
  const fe = err as FastifyError;
  if (fe.validation && fe.validation.length > 0) {
    const first = fe.validation[0]!;
    const where = first.instancePath ? `"${first.instancePath.slice(1).replace(/\//g, '.')}"` : 'the body';
    const extra = (first.params as { additionalProperty?: string }).additionalProperty;
    const problem = extra
      ? `${where} has an unknown field "${extra}"`
      : first.keyword === 'type' && !first.instancePath
        ? 'the body must be a JSON object'
        : `${where} ${first.message ?? 'is invalid'}`;
    return new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem });
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new KilnError('KILN_ERR_HTTP_BAD_JSON', { reason: 'it does not parse' }, { cause: err });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new KilnError('KILN_ERR_HTTP_BAD_JSON', { reason: 'it is empty' }, { cause: err });
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new KilnError('KILN_ERR_HTTP_BODY_TOO_LARGE', { limit: bodyLimit }, { cause: err });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new KilnError('KILN_ERR_HTTP_MEDIA_TYPE', { contentType: contentType ?? 'none' }, { cause: err });
    default:
      if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
        return new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem: fe.message }, { cause: err });
      }
      return toKilnError(err);
  }
}

/** `err` with the body its route expects, in the fix of KILN_ERR_HTTP_INVALID_BODY. */
function withExpectedBody(err: KilnError, expected: string | undefined): KilnError {
  if (
    err.code !== 'KILN_ERR_HTTP_INVALID_BODY' ||
    !expected ||
    (err as KilnError<'KILN_ERR_HTTP_INVALID_BODY'>).params.expected
  )
    return err;
  return new KilnError(
    'KILN_ERR_HTTP_INVALID_BODY',
    { ...(err as KilnError<'KILN_ERR_HTTP_INVALID_BODY'>).params, expected },
    { cause: err },
  );
}

/** A bad body on a KServe or SageMaker route, re-coded so its message shows that protocol's request. */
function forProtocol(err: KilnError, protocol: Protocol): KilnError {
  if (protocol === 'kiln') return err;
  let problem: string;
  if (err.code === 'KILN_ERR_HTTP_INVALID_BODY')
    problem = (err as KilnError<'KILN_ERR_HTTP_INVALID_BODY'>).params.problem;
  else if (err.code === 'KILN_ERR_HTTP_BAD_JSON')
    problem = `the body is not valid JSON (${(err as KilnError<'KILN_ERR_HTTP_BAD_JSON'>).params.reason})`;
  else return err;
  return protocol === 'kserve'
    ? new KilnError('KILN_ERR_HTTP_V2_INVALID_REQUEST', { problem }, { cause: err })
    : new KilnError('KILN_ERR_HTTP_INVOCATIONS_BODY', { problem }, { cause: err });
}

/** The body of an error answer on `url`: KServe's `{"error": "…"}` under /v2, kiln's `{"error": {code, message}}` elsewhere. */
export function errorBody(url: string, err: KilnError): object {
  return protocolOf(url) === 'kserve' ? { error: err.message } : err.toJSON();
}

/** Headers every error answer carries: its code, and Retry-After on a 429. */
export function errorHeaders(err: KilnError): Record<string, string> {
  return err.status === 429
    ? { 'kiln-error-code': err.code, 'retry-after': String(RETRY_AFTER_SECONDS) }
    : { 'kiln-error-code': err.code };
}

function send(request: FastifyRequest, reply: FastifyReply, err: KilnError): FastifyReply {
  return reply.status(err.status).headers(errorHeaders(err)).send(errorBody(request.url, err));
}

export function installErrorHandling(app: FastifyInstance, options: { bodyLimit: number; routes: string }): void {
  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const { route } = request.routeOptions.config;
    const contentType = request.headers['content-type'];
    const bodyLimit = bodyLimitOf(route, contentType, options.bodyLimit);
    const kilnError = forProtocol(
      withExpectedBody(toHttpError(err, bodyLimit, contentType), route?.expectedBody),
      protocolOf(request.url),
    );
    // The path only: a query may carry the API key (/dashboard?key=…), which is never logged.
    if (kilnError.status >= 500) debug(`${request.method} ${request.url.split('?')[0]}: ${err.stack ?? err.message}`);
    send(request, reply, kilnError);
  });
  app.setNotFoundHandler((request, reply) => {
    send(
      request,
      reply,
      new KilnError('KILN_ERR_HTTP_NOT_FOUND', {
        method: request.method,
        url: request.url.split('?')[0]!,
        routes: options.routes,
      }),
    );
  });
}
