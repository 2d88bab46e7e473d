import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import { randomBytesPooled } from './random-pool.js';

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

const SEALED_PREFIX = 'sealed:v1:';

/**
 * Seals a personal value the audit keeps (AES-256-GCM under a key derived from the person's key),
 * bound to the entry it belongs to by the associated data: destroying the person's key makes it
 * unreadable, and it cannot be moved to another entry unnoticed.
 */
export function sealField(subjectKey: Uint8Array, plaintext: string, context: string): string {
  const nonce = randomBytesPooled(12);
  const cipher = createCipheriv('aes-256-gcm', sealingKey(subjectKey), nonce);
  cipher.setAAD(Buffer.from(`sluice sealed v1\n${context}`));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return `${SEALED_PREFIX}${Buffer.concat([nonce, cipher.getAuthTag(), ciphertext]).toString('base64url')}`;
}

/** The sealed value, or undefined when it is not one, was sealed for another context or key, or was altered. */
export function openSealedField(subjectKey: Uint8Array, sealed: string, context: string): string | undefined {
  if (!sealed.startsWith(SEALED_PREFIX)) return undefined;
  const bytes = Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64url');
  if (bytes.length < 28) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', sealingKey(subjectKey), bytes.subarray(0, 12));
    decipher.setAAD(Buffer.from(`sluice sealed v1\n${context}`));
    decipher.setAuthTag(bytes.subarray(12, 28));
    return Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

/**
 * HKDF-SHA256(ikm = subjectKey, salt = empty, info = 'sluice sealing key v1', L = 32), written as
 * its two HMACs (RFC 5869: PRK = HMAC(salt, ikm), OKM = T(1) = HMAC(PRK, info || 0x01)), which is
 * much cheaper than hkdfSync. An empty salt is the same HMAC key as 32 zero bytes.
 */
export function sealingKey(subjectKey: Uint8Array): Buffer {
  const prk = createHmac('sha256', NO_SALT).update(subjectKey).digest();
  return createHmac('sha256', prk).update(SEALING_INFO_BLOCK_1).digest();
}

const NO_SALT = Buffer.alloc(0);
const SEALING_INFO_BLOCK_1 = Buffer.from('sluice sealing key v1\x01', 'latin1');
