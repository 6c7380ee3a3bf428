import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

/** What is answered to each error: Fastify's own answers, but a timed-out request's without a body. */
function answerTo(error: NodeJS.ErrnoException): { status: string; body: string } {
  switch (error.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: '408 Request Timeout', body: '' };
    case 'HPE_HEADER_OVERFLOW':
      return { status: '431 Request Header Fields Too Large', body: '{"error":"Request Header Fields Too Large","message":"Exceeded maximum allowed HTTP header size","statusCode":431}' };
    default:
      return { status: '400 Bad Request', body: '{"error":"Bad Request","message":"Client Error","statusCode":400}' };
  }
}

/**
 * Fastify's `clientErrorHandler`: answers a request that Node refused (not whole within
 * `requestTimeout` of its first byte, headers too large, not HTTP) and closes its connection, as
 * Fastify's own handler does, but writes no answer onto one the request already has begun (a 413
 * sent while the client still uploads): Node's deadline runs until the request has arrived whole,
 * answered or not.
 */
export function handleClientError(this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const answered = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage?.headersSent === true;
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') this.log.info({ answered }, 'request not received in time; connection closed');
  else this.log.trace({ err: error }, 'client error');
  const { status, body } = answerTo(error);
  if (!answered && socket.writable) socket.write(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: ${body.length}\r\n${body ? 'Content-Type: application/json\r\n' : ''}\r\n${body}`);
  socket.destroy(error);
}
