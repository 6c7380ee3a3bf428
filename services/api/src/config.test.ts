import { describe, expect, it } from 'vitest';
import { MAX_INPUT_PIXELS } from '@btd/model';
import { ConfigError } from '@btd/shared';
import { loadApiConfig } from './config.js';

describe('API configuration', () => {
  it('shows no secret of a setting it refuses: not the webhook secret, not credentials in a URL', () => {
    const secrets = { WEBHOOK_SECRET: 'hunter2-short', REDIS_URL: 'http://:redis-password@redis:6379', PACS_STOW_URL: 'dicomweb://pacs-user:pacs-password@pacs' };
    const error = (() => {
      try {
        loadApiConfig(secrets);
      } catch (caught) {
        return caught as ConfigError;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error?.issues.map((issue) => issue.env).sort()).toEqual(['PACS_STOW_URL', 'REDIS_URL', 'WEBHOOK_SECRET']);
    expect(error?.message).not.toMatch(/hunter2|redis-password|pacs-password/);
  });

  it('refuses a pixel limit above what the workers decode, whose images would be accepted only to fail there', () => {
    expect(loadApiConfig({ MAX_IMAGE_PIXELS: String(MAX_INPUT_PIXELS) }).maxImagePixels).toBe(MAX_INPUT_PIXELS);
    expect(() => loadApiConfig({ MAX_IMAGE_PIXELS: String(MAX_INPUT_PIXELS + 1) })).toThrow('MAX_IMAGE_PIXELS');
  });

  it('refuses a request limit that would not take one file of the largest size', () => {
    expect(() => loadApiConfig({ MAX_UPLOAD_BYTES: '2000000', MAX_SUBMISSION_BYTES: '1000000' })).toThrow('MAX_SUBMISSION_BYTES: is 1000000, less than MAX_UPLOAD_BYTES (2000000)');
  });

  it('refuses a budget of upload memory that would not take one request of the largest size', () => {
    expect(() => loadApiConfig({ MAX_SUBMISSION_BYTES: '2000000', MAX_INFLIGHT_UPLOAD_BYTES: '1000000' })).toThrow(
      'MAX_INFLIGHT_UPLOAD_BYTES: is 1000000, less than MAX_SUBMISSION_BYTES (2000000)',
    );
  });

  it('takes the lock and stall check of the result and webhook consumers, refusing a lock too short to be renewed in time', () => {
    expect(loadApiConfig({})).toMatchObject({ consumerLockDurationMs: 30_000, consumerStalledIntervalMs: 30_000 });
    expect(loadApiConfig({ CONSUMER_LOCK_DURATION_MS: '5000', CONSUMER_STALLED_INTERVAL_MS: '500' })).toMatchObject({ consumerLockDurationMs: 5000, consumerStalledIntervalMs: 500 });
    expect(() => loadApiConfig({ CONSUMER_LOCK_DURATION_MS: '4999' })).toThrow('CONSUMER_LOCK_DURATION_MS');
    expect(() => loadApiConfig({ CONSUMER_STALLED_INTERVAL_MS: '499' })).toThrow('CONSUMER_STALLED_INTERVAL_MS');
  });

  it('names the entries of WEBHOOK_ALLOWED_NETWORKS that are not addresses or CIDR ranges', () => {
    expect(loadApiConfig({ WEBHOOK_ALLOWED_NETWORKS: '10.20.0.0/16, fd00::/8' }).webhookAllowedNetworks).toBe('10.20.0.0/16, fd00::/8');
    expect(() => loadApiConfig({ WEBHOOK_ALLOWED_NETWORKS: '10.20.0.0/16, intranet' })).toThrow('WEBHOOK_ALLOWED_NETWORKS: not an address or CIDR range: intranet');
  });
});
