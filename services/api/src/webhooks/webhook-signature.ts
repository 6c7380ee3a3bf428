import { createHmac, timingSafeEqual } from 'node:crypto';

/** Header carrying the signature of every webhook delivery. */
export const SIGNATURE_HEADER = 'x-btd-signature';

/**
 * The secret that signs the webhooks of one client: derived from the deployment's `WEBHOOK_SECRET`
 * and the client id, so that no client can sign a webhook another client's receiver would accept,
 * while the operator keeps one secret. A client reads its own at `GET /v1/webhooks/secret`.
 */
export function clientWebhookSecret(webhookSecret: string, clientId: string): string {
  return createHmac('sha256', webhookSecret).update(`btd webhook signing secret\n${clientId}`, 'utf8').digest('base64url');
}

function hmacHex(secret: string, timestamp: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex');
}

/**
 * Signs a webhook body: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
 * The timestamp is inside the MAC so a captured delivery cannot be replayed later.
 */
export function signWebhook(secret: string, body: string, timestamp: number): string {
  return `t=${timestamp},v1=${hmacHex(secret, timestamp, body)}`;
}

/**
 * Verifies a signature header as a receiver should: the MAC matches the raw body and the
 * timestamp is within `toleranceSeconds` of `now`.
 */
export function verifyWebhookSignature(
  secret: string,
  header: string | undefined,
  body: string,
  opts: { toleranceSeconds?: number; nowSeconds?: number } = {},
): boolean {
  const fields = new Map((header ?? '').split(',').map((part) => part.trim().split('=', 2) as [string, string]));
  const timestamp = Number(fields.get('t'));
  const given = fields.get('v1') ?? '';
  if (!Number.isInteger(timestamp) || !/^[0-9a-f]{64}$/.test(given)) return false;
  const now = opts.nowSeconds ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - timestamp) > (opts.toleranceSeconds ?? 300)) return false;
  return timingSafeEqual(Buffer.from(given, 'hex'), Buffer.from(hmacHex(secret, timestamp, body), 'hex'));
}
