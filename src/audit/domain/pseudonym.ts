import { createHmac } from 'node:crypto';

/**
 * Keyed pseudonyms and digests for the audit log. Both are HMAC-SHA256 under the person's own key
 * (never an unkeyed hash, which anyone could recompute from a phone number), each with its own
 * domain-separation label so a pseudonym can never equal a digest.
 */
export function subjectPseudonym(subjectKey: Uint8Array, subject: { type: string; id: string }): string {
  return `ps_${createHmac('sha256', subjectKey).update(`sluice pseudonym v1\n${subject.type}:${subject.id}`).digest('base64url')}`;
}

export function keyedDigest(subjectKey: Uint8Array, value: string): string {
  return `hd_${createHmac('sha256', subjectKey).update(`sluice digest v1\n${value}`).digest('base64url')}`;
}
