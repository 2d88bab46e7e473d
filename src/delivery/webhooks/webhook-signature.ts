import { createHmac, timingSafeEqual } from 'node:crypto';

/** X-Hub-Signature-256's form: "sha256=" and 64 hex digits. */
export const SIGNATURE_FORM = /^sha256=([0-9a-fA-F]{64})$/;

/**
 * Whether `header` (X-Hub-Signature-256: "sha256=<hex>") is the HMAC-SHA256 of the exact bytes
 * received, keyed with the app secret. The comparison takes the same time wherever the digests
 * differ, so the signature cannot be guessed byte by byte.
 */
export function hasValidSignature(rawBody: Buffer, header: unknown, appSecret: string): boolean {
  if (typeof header !== 'string') return false;
  const match = SIGNATURE_FORM.exec(header.trim());
  if (!match) return false;
  const expected = createHmac('sha256', appSecret).update(rawBody).digest();
  return timingSafeEqual(expected, Buffer.from(match[1]!, 'hex'));
}
