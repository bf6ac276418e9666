/**
 * Every error a client sees has one body: `{"error": {"code", "message"}}`, with the status from
 * the error table. Framework errors (bad JSON, schema, size, media type) are mapped onto kiln codes.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { KilnError, toKilnError } from '../core/errors.js';
import { debug } from '../core/log.js';

export function toHttpError(err: FastifyError | KilnError | Error, bodyLimit: number): KilnError {
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
      return new KilnError('KILN_ERR_HTTP_MEDIA_TYPE', { contentType: String(fe.message.match(/: (.*)$/)?.[1] ?? 'unknown') }, { cause: err });
    default:
      if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
        return new KilnError('KILN_ERR_HTTP_INVALID_BODY', { problem: fe.message }, { cause: err });
      }
      return toKilnError(err);
  }
}

export function installErrorHandling(app: FastifyInstance, options: { bodyLimit: number; routes: () => string }): void {
  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const kilnError = toHttpError(err, options.bodyLimit);
    if (kilnError.status >= 500) debug(`${request.method} ${request.url}: ${err.stack ?? err.message}`);
    void reply.status(kilnError.status).send(kilnError.toJSON());
  });
  app.setNotFoundHandler((request, reply) => {
    const err = new KilnError('KILN_ERR_HTTP_NOT_FOUND', { method: request.method, url: request.url, routes: options.routes() });
    void reply.status(err.status).send(err.toJSON());
  });
}
