import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { AddressNotAllowedError } from './address-not-allowed.error.js';
import { literalAddress, type CallbackAddressPolicy } from './callback-addresses.js';

/** What one POST came to: the status (0 when no answer came) and, unless 2xx, why it failed. */
export interface PostOutcome {
  readonly status: number;
  readonly error?: string;
  /** The address policy refused every address of the host: nothing was sent, and nothing will be while the settings stay. */
  readonly addressRefused?: true;
}

/**
 * A DNS lookup that answers only addresses the policy allows. The connection is made to the address
 * checked here, so a name that resolves to a public address once and a private one next time (DNS
 * rebinding) cannot slip through between a check and the connection.
 */
function allowedLookup(policy: CallbackAddressPolicy): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) return callback(error, '', 0);
      const allowed = addresses.filter((entry) => policy.allows(entry.address));
      const first = allowed[0];
      if (!first) return callback(new AddressNotAllowedError(hostname), '', 0);
      if (options.all) return (callback as unknown as (error: null, addresses: LookupAddress[]) => void)(null, allowed);
      return callback(null, first.address, first.family);
    });
  };
}

function describe(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && error.name === 'AbortError') return `no answer within ${timeoutMs} ms`;
  return error instanceof Error ? error.message : String(error);
}

/**
 * POSTs `body` to `url` and resolves with the status, never rejecting. Redirects are not followed
 * (a 3xx is a failure: it could send the signed body somewhere the client never configured), and
 * the answer's body is not read. With `policy`, the connection goes only to an address it allows.
 */
export function postOutbound(
  url: string,
  body: string | Buffer,
  headers: Record<string, string>,
  options: { timeoutMs: number; policy?: CallbackAddressPolicy },
): Promise<PostOutcome> {
  const { timeoutMs, policy } = options;
  return new Promise<PostOutcome>((resolve) => {
    const fail = (error: unknown) =>
      resolve({ status: 0, error: describe(error, timeoutMs), ...(error instanceof AddressNotAllowedError ? { addressRefused: true as const } : {}) });
    let target: URL;
    try {
      target = new URL(url);
    } catch (error) {
      return fail(error);
    }
    // An address in the URL itself is connected to without a lookup: checked here.
    const literal = literalAddress(target);
    if (policy && literal && !policy.allows(literal)) return fail(new AddressNotAllowedError(literal));
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const requestOptions: RequestOptions = {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'btd-webhooks/1', 'content-length': String(Buffer.byteLength(body)), ...headers },
      signal: AbortSignal.timeout(timeoutMs),
      ...(policy ? { lookup: allowedLookup(policy) } : {}),
    };
    const request = send(target, requestOptions, (response) => {
      const status = response.statusCode ?? 0;
      response.destroy();
      resolve({ status, ...(status >= 200 && status < 300 ? {} : { error: `HTTP ${status}` }) });
    });
    request.on('error', fail);
    request.end(body);
  });
}
