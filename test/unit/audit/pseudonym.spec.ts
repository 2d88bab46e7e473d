import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { openSealedField, sealField, sealingKey } from '../../../src/audit/domain/pseudonym.js';

const hkdfSealingKey = (subjectKey: Uint8Array) => Buffer.from(hkdfSync('sha256', subjectKey, Buffer.alloc(0), 'sluice sealing key v1', 32));

/** sealField as it was written with hkdfSync: what audit logs already hold. */
function sealedTheOldWay(subjectKey: Uint8Array, plaintext: string, context: string): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', hkdfSealingKey(subjectKey), nonce);
  cipher.setAAD(Buffer.from(`sluice sealed v1\n${context}`));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return `sealed:v1:${Buffer.concat([nonce, cipher.getAuthTag(), ciphertext]).toString('base64url')}`;
}

describe('sealing key', () => {
  it('is the HKDF-SHA256 output hkdfSync gives, for any key', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 100 }), (subjectKey) => {
        expect(sealingKey(subjectKey).equals(hkdfSealingKey(subjectKey))).toBe(true);
      }),
      { numRuns: 500 },
    );
    for (let i = 0; i < 200; i++) {
      const subjectKey = randomBytes(32);
      expect(sealingKey(subjectKey).toString('hex')).toBe(hkdfSealingKey(subjectKey).toString('hex'));
    }
  });

  it('matches a fixed vector', () => {
    // hkdfSync('sha256', 32 bytes 0x00..0x1f, '', 'sluice sealing key v1', 32), computed once.
    const subjectKey = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
    expect(sealingKey(subjectKey).toString('hex')).toBe('802f04af4bad9335b7ac114a6b51df87a0441529964148a3c68bd614e37e47a1');
  });
});

describe('sealed fields', () => {
  it('open when sealed with the hkdfSync derivation, and only for their key and context', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.string({ unit: 'binary' }), fc.string(), (subjectKey, plaintext, context) => {
        const sealed = sealedTheOldWay(subjectKey, plaintext, context);
        expect(openSealedField(subjectKey, sealed, context)).toBe(plaintext);
        expect(openSealedField(subjectKey, sealed, `${context}x`)).toBeUndefined();
        expect(openSealedField(randomBytes(32), sealed, context)).toBeUndefined();
      }),
      { numRuns: 200 },
    );
  });

  it('round-trip, with a fresh nonce each time', () => {
    const subjectKey = randomBytes(32);
    const sealed = Array.from({ length: 1000 }, () => sealField(subjectKey, 'the same text', 'share shr_1'));
    expect(new Set(sealed.map((s) => Buffer.from(s.slice('sealed:v1:'.length), 'base64url').subarray(0, 12).toString('hex'))).size).toBe(1000);
    for (const s of sealed.slice(0, 20)) expect(openSealedField(subjectKey, s, 'share shr_1')).toBe('the same text');
  });
});
