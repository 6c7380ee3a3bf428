import { Counter, Gauge, type Registry } from 'prom-client';

/** Gives a decode's memory back; safe to call more than once. */
export type DecodeRelease = () => void;

interface Waiting {
  readonly bytes: number;
  readonly admit: (release: DecodeRelease) => void;
}

/**
 * The memory that decoding uploads holds at once, over all requests of the API process
 * (MAX_INFLIGHT_DECODE_BYTES). Intake decodes every upload to prove it whole, and a file of a few
 * hundred kB may declare 7000×7000 pixels: hundreds of MB once decoded. Each decode takes, before it
 * starts, what its header says it will hold, and gives it back when it ends; one that does not fit
 * waits, in order of arrival, until the decodes ahead of it have ended.
 *
 * This is a budget of its own, not part of MAX_INFLIGHT_UPLOAD_BYTES: a decode starts once its
 * request's bytes have all arrived and are held, so in one budget a decode could wait for memory that
 * only requests waiting to decode would give back. Here a decode waits only for other decodes, which
 * all end; and an upload already received is decoded, late, rather than refused after its transfer.
 */
export class DecodeMemoryBudget {
  #held = 0;
  #inFlight = 0;
  readonly #queue: Waiting[] = [];
  readonly #gauges?: { held: Gauge; inFlight: Gauge; waiting: Gauge };
  readonly #waits?: Counter;
  readonly #abandoned?: Counter;

  /** With a `registry`, the bytes held, the decodes in flight and waiting, the waits and those abandoned are metrics on it. */
  constructor(
    readonly limitBytes: number,
    registry?: Registry,
  ) {
    if (!registry) return;
    const registers = [registry];
    this.#gauges = {
      held: new Gauge({ name: 'btd_decode_bytes_in_memory', help: 'Bytes that decodes of uploads hold now, as their headers tell (at most MAX_INFLIGHT_DECODE_BYTES).', registers }),
      inFlight: new Gauge({ name: 'btd_decodes_in_flight', help: 'Uploads (DICOM frames one at a time) being decoded now.', registers }),
      waiting: new Gauge({ name: 'btd_decodes_waiting', help: 'Uploads waiting for decode memory (MAX_INFLIGHT_DECODE_BYTES) before they are decoded.', registers }),
    };
    this.#waits = new Counter({ name: 'btd_decode_waits_total', help: 'Decodes that waited for others to end before they fitted in MAX_INFLIGHT_DECODE_BYTES.', registers });
    this.#abandoned = new Counter({ name: 'btd_decode_waits_abandoned_total', help: 'Decodes that left the wait for MAX_INFLIGHT_DECODE_BYTES, never run, because their request had gone.', registers });
  }

  /** Bytes held now by the decodes in flight. */
  get heldBytes(): number {
    return this.#held;
  }

  /** Decodes holding memory now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Decodes waiting for memory now. */
  get waiting(): number {
    return this.#queue.length;
  }

  /** Whether a decode of `bytes` can ever run: no more than the whole budget. */
  fits(bytes: number): boolean {
    return bytes <= this.limitBytes;
  }

  /**
   * Takes `bytes` for one decode: at once when they fit and no decode waits before it, else once the
   * decodes ahead of it have given back enough. Resolves to the release. Once `signal` aborts (its
   * request has gone), a decode still waiting leaves the queue, taking nothing, and the decodes behind
   * it may start; one not yet asked for is not let in.
   *
   * @throws RangeError (rejected) when `bytes` are more than the whole budget: callers refuse such an image from its header
   * @throws the signal's reason (rejected) when it aborts before the memory is taken
   */
  async acquire(bytes: number, signal?: AbortSignal): Promise<DecodeRelease> {
    if (!this.fits(bytes)) throw new RangeError(`a decode of ${bytes} bytes can never fit in ${this.limitBytes} (MAX_INFLIGHT_DECODE_BYTES)`);
    signal?.throwIfAborted();
    if (this.#queue.length === 0 && this.#held + bytes <= this.limitBytes) return this.#take(bytes);
    this.#waits?.inc();
    return new Promise((admit, reject) => {
      const leave = () => {
        this.#queue.splice(this.#queue.indexOf(waiting), 1);
        this.#abandoned?.inc();
        this.#admitWaiting();
        this.#show();
        reject(signal!.reason);
      };
      const waiting: Waiting = {
        bytes,
        admit: (release) => {
          signal?.removeEventListener('abort', leave);
          admit(release);
        },
      };
      signal?.addEventListener('abort', leave, { once: true });
      this.#queue.push(waiting);
      this.#show();
    });
  }

  /** Runs `work` with `bytes` held, given back however it ends; with `signal`, as `acquire` does. */
  async run<T>(bytes: number, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(bytes, signal);
    try {
      return await work();
    } finally {
      release();
    }
  }

  #take(bytes: number): DecodeRelease {
    this.#held += bytes;
    this.#inFlight++;
    this.#show();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#held -= bytes;
      this.#inFlight--;
      this.#admitWaiting();
      this.#show();
    };
  }

  /** In order of arrival: smaller decodes overtaking a large one could keep it waiting for ever. */
  #admitWaiting(): void {
    for (let next = this.#queue[0]; next && this.#held + next.bytes <= this.limitBytes; next = this.#queue[0]) {
      this.#queue.shift();
      next.admit(this.#take(next.bytes));
    }
  }

  #show(): void {
    this.#gauges?.held.set(this.#held);
    this.#gauges?.inFlight.set(this.#inFlight);
    this.#gauges?.waiting.set(this.#queue.length);
  }
}
