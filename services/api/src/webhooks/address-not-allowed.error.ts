/**
 * A callbackUrl's address that the address policy refuses (not public, and not in
 * WEBHOOK_ALLOWED_NETWORKS). Its message, which the client sees (as `lastError`, or in the refusal of
 * its submission), names the host as the URL gave it, never the address a name resolved to: that
 * would tell a client the internal address of any name it tries.
 */
export class AddressNotAllowedError extends Error {
  constructor(host: string) {
    super(`${host} is not a public address; WEBHOOK_ALLOWED_NETWORKS does not list its network`);
    this.name = 'AddressNotAllowedError';
  }
}
