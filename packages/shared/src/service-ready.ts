import { EventEmitter, once } from 'node:events';
import { pino, type Logger } from 'pino';

/** What a service sends the process that started it, over its IPC channel, once it is ready to work. */
export const SERVICE_READY_MESSAGE = 'btd:ready';

/** The message {@link announceReady} sends. */
export interface ServiceReadyMessage {
  type: typeof SERVICE_READY_MESSAGE;
  service: string;
}

/** Whether `message`, received from a child process, says that it is ready. */
export function isServiceReady(message: unknown): message is ServiceReadyMessage {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === SERVICE_READY_MESSAGE;
}

/** How long the announcement waits for the log line before it goes anyway. */
const LOG_WRITE_WAIT_MS = 1000;

/**
 * Resolves once what `logger` was given so far has reached its file descriptor. pino writes JSON
 * lines asynchronously (its stream emits `drain` once nothing is pending), and would otherwise let
 * a message sent after a log line overtake it.
 */
async function logWritten(logger: Logger): Promise<void> {
  const stream: unknown = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym];
  if (!(stream instanceof EventEmitter) || (stream as { sync?: unknown }).sync !== false) return;
  await once(stream, 'drain', { signal: AbortSignal.timeout(LOG_WRITE_WAIT_MS) }).catch(() => undefined);
}

/**
 * Tells the process that started this one, when it did so with an IPC channel (as `npm start`
 * does), that the service is ready: a worker has its models loaded and takes jobs. Call it right
 * after logging so: the line is written first, so that it comes before whatever the parent prints
 * on hearing it. Without a channel (a container, a shell) it does nothing.
 */
export async function announceReady(logger: Logger, service: string): Promise<void> {
  if (!process.send || !process.connected) return;
  await logWritten(logger);
  const message: ServiceReadyMessage = { type: SERVICE_READY_MESSAGE, service };
  // A parent gone meanwhile is no error of the service's.
  process.send(message, undefined, {}, () => {});
}
