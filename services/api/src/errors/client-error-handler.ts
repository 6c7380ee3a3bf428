import { maxHeaderSize, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

/** An answer in the shape of every other refusal, with its `code`. */
function refusal(statusCode: number, error: string, code: string, message: string): { status: string; body: string } {
  return { status: `${statusCode} ${error}`, body: JSON.stringify({ statusCode, error, code, message }) };
}

/** What is answered to each error: a refusal as the API's error handler words one, but a timed-out request's without a body. */
function answerTo(error: NodeJS.ErrnoException): { status: string; body: string } {
  switch (error.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: '408 Request Timeout', body: '' };
    case 'HPE_HEADER_OVERFLOW':
      return refusal(431, 'Request Header Fields Too Large', 'headers_too_large', `the request headers are larger than the ${maxHeaderSize} bytes the server reads`);
    default:
      return refusal(400, 'Bad Request', 'malformed_request', 'the request is not valid HTTP/1.1');
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
