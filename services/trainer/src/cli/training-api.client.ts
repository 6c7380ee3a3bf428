import type { TrainingJob, TrainingProgress, TrainingResult } from '@btd/shared';
import { apiRequestError } from './api-request.error.js';
import { ApiUnreachableError } from './api-unreachable.error.js';

/** What `POST /v1/trainings` takes: a training job without `requestedBy`, which the API fills in. */
export type TrainingRequest = Omit<TrainingJob, 'requestedBy'>;

/** A training as `GET /v1/trainings/:id` shows it. */
export interface TrainingView {
  id: string;
  /** waiting, active, delayed (handed back: resumes, or waits for a trainer that can read its dataset folder), completed or failed; cancelling, then cancelled. */
  state: string;
  request: TrainingJob;
  progress: TrainingProgress | null;
  result?: TrainingResult;
  failedReason?: string;
  attempts: number;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  cancelledBy?: string;
  cancelledAt?: string;
}

/** Where the API is and the key to call it with. */
export interface ApiConnection {
  /** Base URL, e.g. `http://127.0.0.1:3000`. */
  readonly url: string;
  readonly key: string;
}

/** Longest wait for one answer; a training itself is followed by polling, never by one long request. */
const REQUEST_TIMEOUT_MS = 15_000;

/** The `/v1/trainings` routes of the API over HTTP. Errors are {@link ApiUnreachableError} or `ApiRequestError`. */
export class TrainingApiClient {
  constructor(private readonly connection: ApiConnection) {}

  /** Queues a training (admin key); the same idempotency key from the same client names the same training. */
  async start(request: TrainingRequest, idempotencyKey?: string): Promise<{ id: string; state: string }> {
    return this.call('POST', '/v1/trainings', request, idempotencyKey ? { 'idempotency-key': idempotencyKey } : {});
  }

  async get(id: string): Promise<TrainingView> {
    return this.call('GET', `/v1/trainings/${encodeURIComponent(id)}`);
  }

  /** Cancels a queued or running training (admin key): cancelled at once, or cancelling until its trainer stops it. */
  async cancel(id: string): Promise<TrainingView> {
    return this.call('DELETE', `/v1/trainings/${encodeURIComponent(id)}`);
  }

  /** The most recent trainings, newest first. */
  async list(): Promise<TrainingView[]> {
    return (await this.call<{ items: TrainingView[] }>('GET', '/v1/trainings')).items;
  }

  private async call<T>(method: string, route: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<T> {
    const url = endpoint(this.connection.url, route);
    const headers: Record<string, string> = { authorization: `Bearer ${this.connection.key}`, accept: 'application/json', ...extraHeaders };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      throw new ApiUnreachableError(this.connection.url, error);
    }
    const text = await response.text();
    const parsed = parseJson(text);
    if (!response.ok) throw apiRequestError(response.status, parsed ?? text);
    if (parsed === undefined) throw new Error(`${url.origin} answered ${method} ${route} with something other than JSON; is --api the btd API?`);
    return parsed as T;
  }
}

/** A route under the API's base URL, whose path is kept: an API behind a gateway may sit under `/btd/`. */
export function endpoint(base: string, route: string): URL {
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${route}`;
  return url;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
