import { describe, expect, it } from 'vitest';
import { RetryLaterError } from '../errors/retry-later.error.js';
import { UploadMemoryBudget } from './upload-memory-budget.js';

describe('the memory that uploads share', () => {
  it('takes what a request announces at once and what streams in beyond it, and refuses past the limit', () => {
    const budget = new UploadMemoryBudget(1000);
    const announced = budget.reserve(600);
    announced.add(500); // within what it announced
    expect(budget.heldBytes).toBe(600);
    const streamed = budget.reserve(0);
    streamed.add(300);
    expect(budget.heldBytes).toBe(900);
    expect(() => streamed.add(200)).toThrow(RetryLaterError);
    expect(() => budget.reserve(200)).toThrow(expect.objectContaining({ statusCode: 503, code: 'upload_capacity_exceeded', retryAfterSeconds: 10 }));
    expect(budget.heldBytes).toBe(900);
  });

  it('gives every byte back once, however often a request is released', () => {
    const budget = new UploadMemoryBudget(1000);
    const first = budget.reserve(400);
    first.add(700);
    first.release();
    first.release();
    first.add(100);
    expect(budget.heldBytes).toBe(0);
    budget.reserve(1000).release();
    expect(budget.heldBytes).toBe(0);
  });
});
