import { ApiError } from '../errors/api-error.js';

/** What a client's callbackUrl must be, from the configuration. */
export interface CallbackUrlPolicy {
  /** Only https (WEBHOOK_REQUIRE_HTTPS), but for a receiver on the API's own machine. */
  readonly requireHttps: boolean;
}

/** Loopback written as an address (the URL parser has already turned `2130706433` and the like into `127.0.0.1`): the body never leaves the machine. */
function isLoopbackLiteral(hostname: string): boolean {
  return /^127(\.\d{1,3}){3}$/.test(hostname) || hostname === '[::1]';
}

/**
 * Checks a client's callbackUrl: an http or https URL of at most 2048 characters, and https when the
 * policy requires it, since a webhook's body carries the study's DICOM identifiers.
 *
 * @throws ApiError 400 `invalid_field` naming what is wrong
 */
export function checkCallbackUrl(value: string, policy: CallbackUrlPolicy): string {
  const refuse = (message: string) => new ApiError(400, 'invalid_field', `field "callbackUrl" ${message}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw refuse('is not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw refuse('must be an http or https URL');
  if (value.length > 2048) throw refuse('is longer than 2048 characters');
  if (policy.requireHttps && url.protocol === 'http:' && !isLoopbackLiteral(url.hostname)) {
    throw refuse('must be an https URL: webhooks carry DICOM identifiers, which this service sends encrypted only (WEBHOOK_REQUIRE_HTTPS)');
  }
  return value;
}
