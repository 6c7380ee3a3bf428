import { ApiError } from '../errors/api-error.js';
import { AddressNotAllowedError } from './address-not-allowed.error.js';
import { callbackAddressPolicy, literalAddress, type CallbackAddressPolicy } from './callback-addresses.js';

/** What a client's callbackUrl must be, from the configuration. */
export interface CallbackUrlPolicy {
  /** Only https (WEBHOOK_REQUIRE_HTTPS), but for a receiver on the API's own machine. */
  readonly requireHttps: boolean;
  /** The addresses webhooks may reach (WEBHOOK_ALLOWED_NETWORKS): an address written in the URL is checked at once. */
  readonly addresses: CallbackAddressPolicy;
}

/** The policy of the settings WEBHOOK_REQUIRE_HTTPS and WEBHOOK_ALLOWED_NETWORKS. */
export function callbackUrlPolicy(config: { webhookRequireHttps: boolean; webhookAllowedNetworks: string }): CallbackUrlPolicy {
  return { requireHttps: config.webhookRequireHttps, addresses: callbackAddressPolicy(config.webhookAllowedNetworks) };
}

/** Loopback written as an address (the URL parser has already turned `2130706433` and the like into `127.0.0.1`): the body never leaves the machine. */
function isLoopbackLiteral(hostname: string): boolean {
  return /^127(\.\d{1,3}){3}$/.test(hostname) || hostname === '[::1]';
}

/**
 * Checks a client's callbackUrl: an http or https URL of at most 2048 characters, https when the
 * policy requires it, since a webhook's body carries the study's DICOM identifiers, and, when its host
 * is an address (in any form the URL parser reads: `127.1`, `2130706433`, `[::ffff:127.0.0.1]`), one
 * the address policy allows, which no retry would change. A host name is checked where the webhook is
 * sent, on the addresses it resolves to then.
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
  const address = literalAddress(url);
  if (address && !policy.addresses.allows(address)) throw refuse(`is refused: ${new AddressNotAllowedError(url.hostname).message}`);
  return value;
}
