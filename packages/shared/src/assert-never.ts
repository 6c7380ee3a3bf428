/**
 * Marks the end of an exhaustive `switch` over a union: the call only type-checks when every
 * variant was handled, and throws if an unknown variant arrives at run time anyway.
 */
export function assertNever(value: never, what = 'value'): never {
  throw new Error(`Unexpected ${what}: ${JSON.stringify(value)}`);
}
