import { describe, expect, it } from '@jest/globals';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { checkpointBody, parseVerifierKey, signCheckpoint, verifierKey, verifyCheckpoint } from './checkpoint.js';

const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const root = createHash('sha256').update('root').digest();
const origin = 'sluice.example/audit';

describe('signed checkpoints (C2SP tlog-checkpoint + signed-note)', () => {
  const note = signCheckpoint({ origin, size: 42, root, privateKey });
  const key = parseVerifierKey(verifierKey(origin, privateKey));

  it('has the checkpoint body, a blank line and an em-dash signature line', () => {
    const lines = note.split('\n');
    expect(lines.slice(0, 4)).toEqual([origin, '42', root.toString('base64'), '']);
    expect(lines[4]).toMatch(new RegExp(`^\u2014 ${origin.replace('.', '\\.')} [A-Za-z0-9+/]{91}=$`));
    expect(lines[5]).toBe('');
    expect(note.startsWith(checkpointBody({ origin, size: 42, root }))).toBe(true);
  });

  it('names the key by the first four bytes of SHA-256(name, newline, 0x01, public key)', () => {
    const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
    const expectedId = createHash('sha256').update(Buffer.concat([Buffer.from(`${origin}\n`), Buffer.from([1]), raw])).digest().subarray(0, 4);
    expect(verifierKey(origin, publicKey)).toBe(`${origin}+${expectedId.toString('hex')}+${Buffer.concat([Buffer.from([1]), raw]).toString('base64')}`);
    const signature = Buffer.from(note.split('\n')[4]!.split(' ')[2]!, 'base64');
    expect(signature.subarray(0, 4)).toEqual(expectedId);
  });

  it('verifies and parses what it signed', () => {
    expect(verifyCheckpoint(note, key)).toEqual({ ok: true, checkpoint: { origin, size: 42, root } });
  });

  it('refuses a signature written in non-canonical base64 (same bytes, other unused bits)', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    // 68 signature bytes end in a group of two: the last character before "=" has two unused bits.
    const loosen = (b64: string) => {
      const at = b64.indexOf('=') - 1;
      return b64.slice(0, at) + alphabet[alphabet.indexOf(b64[at]!) ^ 1] + b64.slice(at + 1);
    };
    const lines = note.split('\n');
    const [dash, name, signature] = lines[4]!.split(' ');
    expect(Buffer.from(loosen(signature!), 'base64')).toEqual(Buffer.from(signature!, 'base64'));
    lines[4] = [dash, name, loosen(signature!)].join(' ');
    expect(verifyCheckpoint(lines.join('\n'), key)).toEqual({ ok: false, reason: 'a signature line is not canonical base64' });
  });

  it('fails on any flipped character of the note', () => {
    for (let i = 0; i < note.length; i++) {
      const code = note.charCodeAt(i);
      const flipped = note.slice(0, i) + String.fromCharCode(code === 0x41 ? 0x42 : code === 0x0a ? 0x20 : code ^ 1) + note.slice(i + 1);
      expect(verifyCheckpoint(flipped, key).ok).toBe(false);
    }
  });

  it('fails with another key, trailing garbage or a missing signature', () => {
    const other = generateKeyPairSync('ed25519').privateKey;
    expect(verifyCheckpoint(note, parseVerifierKey(verifierKey(origin, other)))).toEqual({ ok: false, reason: 'no signature by the trusted key' });
    expect(verifyCheckpoint(`${note}garbage`, key).ok).toBe(false);
    expect(verifyCheckpoint(`${note}\n`, key).ok).toBe(false);
    expect(verifyCheckpoint(checkpointBody({ origin, size: 42, root }), key).ok).toBe(false);
    const forged = signCheckpoint({ origin, size: 43, root, privateKey: other, keyName: origin });
    expect(verifyCheckpoint(forged, key).ok).toBe(false);
  });

  it('refuses malformed verifier keys', () => {
    const good = verifierKey(origin, publicKey);
    expect(parseVerifierKey(good).name).toBe(origin);
    expect(() => parseVerifierKey(good.replace(/\+[0-9a-f]{8}\+/, '+00000000+'))).toThrow(/key id/);
    expect(() => parseVerifierKey(`${origin}+0000`)).toThrow();
    expect(() => parseVerifierKey(good.replace(/\+([A-Za-z0-9+/]+=*)$/, '+AgAA'))).toThrow();
  });
});
