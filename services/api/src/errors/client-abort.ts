/**
 * Node's error for a request whose connection closed before its body ended: the client went away, or
 * the request deadline closed it. Not a dependency's fault, though its code (ECONNRESET) is the one a
 * lost Redis connection gives.
 */
export function isClientAbort(error: unknown): boolean {
  return error instanceof Error && error.message === 'aborted' && (error as { code?: string }).code === 'ECONNRESET';
}
