/**
 * Where a server listens unless told otherwise: loopback only (rule: servers bind 127.0.0.1
 * unless told). Its own file so that the CLI's command table reads them without loading fastify.
 */
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8080;
