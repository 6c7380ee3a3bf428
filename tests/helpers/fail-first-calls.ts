/** A method made to fail at first, and how to put it back. */
export interface FailingCalls {
  /** Failures still to come. */
  left(): number;
  restore(): void;
}

/**
 * Makes the first `count` calls of `target[method]` throw, as they would while Redis restarts
 * ("Connection is closed."), and later calls go through to the method.
 */
export function failFirstCalls<T extends object, K extends keyof T>(target: T, method: K, count = 1): FailingCalls {
  const original = target[method] as (...args: unknown[]) => unknown;
  let failures = count;
  const failing = async (...args: unknown[]) => {
    if (failures > 0) {
      failures -= 1;
      throw new Error('Connection is closed.');
    }
    return original.apply(target, args);
  };
  Object.assign(target, { [method]: failing });
  return {
    left: () => failures,
    restore: () => Object.assign(target, { [method]: original }),
  };
}
