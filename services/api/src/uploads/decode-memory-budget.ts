import { Counter, Gauge, type Registry } from 'prom-client';
import { MemoryBudget, type MemoryBudgetObserver, type MemoryRelease } from '@btd/shared';

/** Gives a decode's memory back; safe to call more than once. */
export type DecodeRelease = MemoryRelease;

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
export class DecodeMemoryBudget extends MemoryBudget {
  /** With a `registry`, the bytes held, the decodes in flight and waiting, the waits and those abandoned are metrics on it. */
  constructor(limitBytes: number, registry?: Registry) {
    super(limitBytes, 'MAX_INFLIGHT_DECODE_BYTES', registry ? decodeMetrics(registry) : {});
  }
}

function decodeMetrics(registry: Registry): MemoryBudgetObserver {
  const registers = [registry];
  const held = new Gauge({ name: 'btd_decode_bytes_in_memory', help: 'Bytes that decodes of uploads hold now, as their headers tell (at most MAX_INFLIGHT_DECODE_BYTES).', registers });
  const inFlight = new Gauge({ name: 'btd_decodes_in_flight', help: 'Uploads (DICOM frames one at a time) being decoded now.', registers });
  const waiting = new Gauge({ name: 'btd_decodes_waiting', help: 'Uploads waiting for decode memory (MAX_INFLIGHT_DECODE_BYTES) before they are decoded.', registers });
  const waits = new Counter({ name: 'btd_decode_waits_total', help: 'Decodes that waited for others to end before they fitted in MAX_INFLIGHT_DECODE_BYTES.', registers });
  const abandoned = new Counter({ name: 'btd_decode_waits_abandoned_total', help: 'Decodes that left the wait for MAX_INFLIGHT_DECODE_BYTES, never run, because their request had gone.', registers });
  return {
    changed: (state) => (held.set(state.heldBytes), inFlight.set(state.inFlight), waiting.set(state.waiting)),
    waited: () => waits.inc(),
    abandoned: () => abandoned.inc(),
  };
}
