import { performance } from 'node:perf_hooks';
import type { LoadedModel } from '@btd/model';
import type { ModelTask } from '@btd/shared';

/** A model being served, with what every result must record about it. */
export type ServedModel = LoadedModel & { readonly task: ModelTask; readonly version: string; readonly contentHash: string };

/** One loaded version and who still uses it. */
export class ModelSlot {
  leases = 0;
  private retiredAt: number | undefined;
  private disposed = false;
  readonly served: ServedModel;

  constructor(task: ModelTask, version: string, contentHash: string, private readonly inner: LoadedModel, private readonly graceMs: number) {
    const predict: LoadedModel['predict'] = async (image, options) => {
      this.leases += 1;
      try {
        return await inner.predict(image, options);
      } finally {
        this.leases -= 1;
        this.disposeIfIdle();
      }
    };
    // The provider owns the model's life: a job calling dispose() must not pull it from under others.
    this.served = Object.freeze({ manifest: inner.manifest, predict, dispose: () => {}, task, version, contentHash });
  }

  retire(): void {
    this.retiredAt = performance.now();
    setTimeout(() => this.disposeIfIdle(), this.graceMs + 1).unref();
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Disposes a retired version once no job holds it and its grace is over; with `force`, any version now. */
  disposeIfIdle(force = false): void {
    if (this.disposed) return;
    if (!force) {
      if (this.retiredAt === undefined || this.leases > 0) return;
      if (performance.now() - this.retiredAt < this.graceMs) return;
    }
    this.disposed = true;
    this.inner.dispose();
  }
}
