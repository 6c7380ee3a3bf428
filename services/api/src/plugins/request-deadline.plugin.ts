import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

const TIMED_OUT = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';

/**
 * Closes the connection of a request whose body has not all arrived `timeoutMs` after its headers,
 * answering 408 if nothing was answered yet. Node enforces its `requestTimeout` only until the headers
 * are complete: a client that sends them and then a body slowly, or stops halfway (Slowloris), would
 * otherwise hold its connection, and what it sent, for good.
 */
export const requestDeadlinePlugin = fp<{ timeoutMs: number }>(async (app: FastifyInstance, { timeoutMs }) => {
  app.addHook('onRequest', async (request, reply) => {
    const { raw } = request;
    if (raw.complete) return;
    const timer = setTimeout(() => {
      if (raw.complete || raw.socket.destroyed) return;
      request.log.info({ timeoutMs }, 'request not received in time; connection closed');
      if (reply.raw.headersSent) raw.socket.destroy();
      else raw.socket.write(TIMED_OUT, () => raw.socket.destroy());
    }, timeoutMs);
    timer.unref();
    const clear = () => clearTimeout(timer);
    raw.once('end', clear);
    raw.once('close', clear);
  });
});
