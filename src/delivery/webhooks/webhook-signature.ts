import { signatureMatches } from '../../platform/auth/authenticate-before-body.js';

/** X-Hub-Signature-256's form: "sha256=" and 64 hex digits. */
export const SIGNATURE_FORM = /^sha256=([0-9a-fA-F]{64})$/;

/** Whether `header` (X-Hub-Signature-256: "sha256=<hex>") is the HMAC-SHA256 of the exact bytes received, keyed with the app secret. */
export function hasValidSignature(rawBody: Buffer, header: unknown, appSecret: string): boolean {
  return signatureMatches(rawBody, header, SIGNATURE_FORM, appSecret);
}
