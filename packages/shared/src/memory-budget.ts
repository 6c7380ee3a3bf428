/** Gives memory taken from a {@link MemoryBudget} back; safe to call more than once. */
export type MemoryRelease = () => void;

/** What a budget reports as it changes: the bytes held, the holders and those waiting; each wait and each wait abandoned. */
export interface MemoryBudgetObserver {
  changed?(state: { heldBytes: number; inFlight: number; waiting: number }): void;
  waited?(): void;
  abandoned?(): void;
}

interface Waiting {
  readonly bytes: number;
  readonly admit: (release: MemoryRelease) => void;
}

/**
 * Memory that decodes hold at once in one process, as their headers tell: each takes, before it
 * starts, what it will hold, and gives it back when it ends; one that does not fit waits, in order of
 * arrival, until those ahead of it have ended. The API bounds its uploads' decodes with it
 * (MAX_INFLIGHT_DECODE_BYTES), the inference worker its jobs' (WORKER_MAX_INFLIGHT_DECODE_BYTES).
 */
export class MemoryBudget {
  #held = 0;
  #inFlight = 0;
  readonly #queue: Waiting[] = [];

  /** `setting` names the budget in errors. */
  constructor(
    readonly limitBytes: number,
    readonly setting: string,
    private readonly observer: MemoryBudgetObserver = {},
  ) {}

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
   * decodes ahead of it have given back enough. Resolves to the release. Once `signal` aborts, a
   * decode still waiting leaves the queue, taking nothing, and the decodes behind it may start; one
   * not yet asked for is not let in.
   *
   * @throws RangeError (rejected) when `bytes` are more than the whole budget
   * @throws the signal's reason (rejected) when it aborts before the memory is taken
   */
  async acquire(bytes: number, signal?: AbortSignal): Promise<MemoryRelease> {
    if (!this.fits(bytes)) throw new RangeError(`a decode of ${bytes} bytes can never fit in ${this.limitBytes} (${this.setting})`);
    signal?.throwIfAborted();
    if (this.#queue.length === 0 && this.#held + bytes <= this.limitBytes) return this.#take(bytes);
    this.observer.waited?.();
    return new Promise((admit, reject) => {
      const leave = () => {
        this.#queue.splice(this.#queue.indexOf(waiting), 1);
        this.observer.abandoned?.();
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

  #take(bytes: number): MemoryRelease {
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
    this.observer.changed?.({ heldBytes: this.#held, inFlight: this.#inFlight, waiting: this.#queue.length });
  }
}
