import { Counter, Gauge, type Registry } from 'prom-client';
import { RetryLaterError } from '../errors/retry-later.error.js';

/** How long a client refused for want of upload memory is asked to wait: long enough for uploads in progress to finish. */
export const UPLOAD_RETRY_AFTER_SECONDS = 10;

/**
 * The bytes that one request holds against the budget. It starts with what the request announced
 * (its Content-Length) and grows as bytes stream in beyond that (a chunked body announces nothing).
 */
export interface UploadReservation {
  /**
   * Counts `bytes` more as held by the request.
   *
   * @throws RetryLaterError 503 when they do not fit in the budget
   */
  add(bytes: number): void;
  /** Gives the request's bytes back; safe to call more than once. */
  release(): void;
}

/**
 * The bytes of uploads that the API process holds in memory at once, over all requests: each
 * request is refused by itself past MAX_SUBMISSION_BYTES, but many in parallel could together hold
 * more than the process has. A request whose bytes would go past the budget is answered 503 with a
 * `Retry-After`, at once when its Content-Length says so, or as soon as the bytes it streams do.
 */
export class UploadMemoryBudget {
  #held = 0;
  readonly #heldGauge?: Gauge;
  readonly #refusals?: Counter;

  /** With a `registry`, the bytes held (`btd_upload_bytes_in_memory`) and the refusals are metrics on it. */
  constructor(
    readonly limitBytes: number,
    registry?: Registry,
  ) {
    if (!registry) return;
    const registers = [registry];
    this.#heldGauge = new Gauge({ name: 'btd_upload_bytes_in_memory', help: 'Bytes of uploads held in memory now (at most MAX_INFLIGHT_UPLOAD_BYTES).', registers });
    this.#refusals = new Counter({
      name: 'btd_upload_capacity_refusals_total',
      help: 'Uploads answered 503 because their bytes would have gone past MAX_INFLIGHT_UPLOAD_BYTES.',
      registers,
    });
  }

  /** Bytes held now by all requests. */
  get heldBytes(): number {
    return this.#held;
  }

  /**
   * Opens the reservation of one request with `announcedBytes` held up front.
   *
   * @throws RetryLaterError 503 when they do not fit
   */
  reserve(announcedBytes: number): UploadReservation {
    let reserved = 0;
    let used = 0;
    let released = false;
    this.#take(announcedBytes);
    reserved = announcedBytes;
    return {
      add: (bytes) => {
        if (released) return;
        used += bytes;
        if (used <= reserved) return;
        this.#take(used - reserved);
        reserved = used;
      },
      release: () => {
        if (released) return;
        released = true;
        this.#give(reserved);
      },
    };
  }

  #take(bytes: number): void {
    if (bytes <= 0) return;
    if (this.#held + bytes > this.limitBytes) {
      this.#refusals?.inc();
      throw new RetryLaterError(
        503,
        'upload_capacity_exceeded',
        `the service holds as many uploaded bytes as it may at once (MAX_INFLIGHT_UPLOAD_BYTES, ${this.limitBytes}); retry after ${UPLOAD_RETRY_AFTER_SECONDS} seconds`,
        UPLOAD_RETRY_AFTER_SECONDS,
      );
    }
    this.#held += bytes;
    this.#heldGauge?.set(this.#held);
  }

  #give(bytes: number): void {
    this.#held -= bytes;
    this.#heldGauge?.set(this.#held);
  }
}
