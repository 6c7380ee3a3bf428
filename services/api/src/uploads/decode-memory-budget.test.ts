import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { DecodeMemoryBudget, type DecodeRelease } from './decode-memory-budget.js';

/** Records the order in which acquisitions are granted. */
function track(budget: DecodeMemoryBudget, bytes: number, granted: string[], label: string): Promise<DecodeRelease> {
  return budget.acquire(bytes).then((release) => {
    granted.push(label);
    return release;
  });
}

describe('the memory that decodes share', () => {
  it('lets decodes in while they fit, and makes the others wait, in order, until enough is given back', async () => {
    const budget = new DecodeMemoryBudget(1000);
    const granted: string[] = [];
    const first = await track(budget, 600, granted, 'first');
    const second = track(budget, 500, granted, 'second');
    const third = track(budget, 100, granted, 'third'); // would fit, but does not overtake the second
    expect([budget.heldBytes, budget.inFlight, budget.waiting]).toEqual([600, 1, 2]);
    first();
    await Promise.all([second, third]);
    expect(granted).toEqual(['first', 'second', 'third']);
    expect([budget.heldBytes, budget.inFlight, budget.waiting]).toEqual([600, 2, 0]);
  });

  it('lets a decode whose request has gone leave the wait, taking nothing, so that those behind it go in', async () => {
    const registry = new Registry();
    const budget = new DecodeMemoryBudget(1000, registry);
    const granted: string[] = [];
    const first = await track(budget, 600, granted, 'first');
    const gone = new AbortController();
    const large = budget.acquire(900, gone.signal);
    const small = track(budget, 300, granted, 'small'); // fits beside the first, but waits behind the large one
    expect(budget.waiting).toBe(2);
    gone.abort(new Error('client gone'));
    await expect(large).rejects.toThrow('client gone');
    (await small)();
    expect([granted, budget.heldBytes, budget.inFlight, budget.waiting]).toEqual([['first', 'small'], 600, 1, 0]);
    const abandoned = await registry.getSingleMetric('btd_decode_waits_abandoned_total')!.get();
    expect(abandoned.values[0]?.value).toBe(1);
    await expect(budget.acquire(100, gone.signal)).rejects.toThrow('client gone'); // gone already: not let in at all
    first();
    expect([budget.heldBytes, budget.inFlight]).toEqual([0, 0]);
  });

  it('refuses a decode larger than the whole budget instead of letting it wait for ever', async () => {
    const budget = new DecodeMemoryBudget(1000);
    expect(budget.fits(1001)).toBe(false);
    await expect(budget.acquire(1001)).rejects.toThrow(/MAX_INFLIGHT_DECODE_BYTES/);
    expect([budget.heldBytes, budget.waiting]).toEqual([0, 0]);
  });

  it('gives the memory back once, whether the work succeeds or fails, however often it is released', async () => {
    const budget = new DecodeMemoryBudget(1000);
    await expect(budget.run(1000, async () => Promise.reject(new Error('truncated')))).rejects.toThrow('truncated');
    expect([budget.heldBytes, budget.inFlight]).toEqual([0, 0]);
    await expect(budget.run(1000, async () => 'decoded')).resolves.toBe('decoded');
    const release = await budget.acquire(400);
    release();
    release();
    expect([budget.heldBytes, budget.inFlight]).toEqual([0, 0]);
  });

  it('shows what it holds, what is in flight and waiting, and how many waited, as metrics', async () => {
    const registry = new Registry();
    const budget = new DecodeMemoryBudget(1000, registry);
    const first = await budget.acquire(800);
    const waiting = budget.acquire(800);
    const value = async (name: string) => (await registry.getSingleMetric(name)!.get()).values[0]?.value;
    expect([await value('btd_decode_bytes_in_memory'), await value('btd_decodes_in_flight'), await value('btd_decodes_waiting'), await value('btd_decode_waits_total')]).toEqual([800, 1, 1, 1]);
    first();
    (await waiting)();
    expect([await value('btd_decode_bytes_in_memory'), await value('btd_decodes_in_flight'), await value('btd_decodes_waiting')]).toEqual([0, 0, 0]);
  });
});
