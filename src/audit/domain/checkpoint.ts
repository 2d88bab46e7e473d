import { createHash, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';

/**
 * Checkpoints in the C2SP tlog-checkpoint format, signed as C2SP signed notes with Ed25519:
 *
 *   <origin>\n<tree size>\n<base64 root hash>\n
 *   \n
 *   — <key name> <base64(4-byte key id || 64-byte signature)>\n
 *
 * The key id is the first 4 bytes of SHA-256(key name || "\n" || 0x01 || raw public key), 0x01
 * being the signed-note algorithm byte of Ed25519.
 */

const ED25519_ALGORITHM = 0x01;
const SIGNATURE_PREFIX = '\u2014 ';

export interface Checkpoint {
  origin: string;
  size: number;
  root: Uint8Array;
}

export function checkpointBody({ origin, size, root }: Checkpoint): string {
  return `${origin}\n${size}\n${Buffer.from(root).toString('base64')}\n`;
}

function rawPublicKey(key: KeyObject): Buffer {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  if (publicKey.asymmetricKeyType !== 'ed25519') throw new TypeError('checkpoints are signed with Ed25519 keys only');
  return Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
}

export function keyId(name: string, rawKey: Uint8Array): Buffer {
  return createHash('sha256')
    .update(Buffer.concat([Buffer.from(`${name}\n`, 'utf8'), Buffer.from([ED25519_ALGORITHM]), rawKey]))
    .digest()
    .subarray(0, 4);
}

/** The signed-note verifier key: `<name>+<key id hex>+<base64(0x01 || public key)>`. */
export function verifierKey(name: string, key: KeyObject): string {
  const raw = rawPublicKey(key);
  return `${name}+${keyId(name, raw).toString('hex')}+${Buffer.concat([Buffer.from([ED25519_ALGORITHM]), raw]).toString('base64')}`;
}

export interface ParsedVerifierKey {
  name: string;
  keyId: Buffer;
  publicKey: KeyObject;
}

export function parseVerifierKey(text: string): ParsedVerifierKey {
  const match = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]+={0,2})$/.exec(text.trim());
  if (!match) throw new Error('not a signed-note verifier key (name+keyid+base64)');
  const [, name, idHex, keyB64] = match as unknown as [string, string, string, string];
  const bytes = Buffer.from(keyB64, 'base64');
  if (bytes.length !== 33 || bytes[0] !== ED25519_ALGORITHM) throw new Error('the verifier key is not an Ed25519 key');
  const raw = bytes.subarray(1);
  if (!keyId(name, raw).equals(Buffer.from(idHex, 'hex'))) throw new Error('the verifier key id does not match its name and key');
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  return { name, keyId: Buffer.from(idHex, 'hex'), publicKey };
}

export function signCheckpoint(checkpoint: Checkpoint & { privateKey: KeyObject; keyName?: string }): string {
  const name = checkpoint.keyName ?? checkpoint.origin;
  const body = checkpointBody(checkpoint);
  const signature = sign(null, Buffer.from(body, 'utf8'), checkpoint.privateKey);
  const id = keyId(name, rawPublicKey(checkpoint.privateKey));
  return `${body}\n${SIGNATURE_PREFIX}${name} ${Buffer.concat([id, signature]).toString('base64')}\n`;
}

export type CheckpointVerification = { ok: true; checkpoint: Checkpoint } | { ok: false; reason: string };

/** Parses a signed checkpoint and checks its signature by the given key; never throws. */
export function verifyCheckpoint(note: string, key: ParsedVerifierKey): CheckpointVerification {
  const split = note.indexOf('\n\n');
  if (split < 0) return { ok: false, reason: 'no blank line between body and signatures' };
  const body = note.slice(0, split + 1);
  const signatureLines = note.slice(split + 2);
  const lines = body.split('\n');
  if (lines.length < 4 || lines[lines.length - 1] !== '') return { ok: false, reason: 'the body is not origin, size and root lines' };
  const [origin, sizeText, rootText] = lines as [string, string, string];
  if (!origin) return { ok: false, reason: 'the origin line is empty' };
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) return { ok: false, reason: 'the size line is not a decimal tree size' };
  const root = Buffer.from(rootText, 'base64');
  if (root.length !== 32 || root.toString('base64') !== rootText) return { ok: false, reason: 'the root line is not a base64 32-byte hash' };
  if (!signatureLines.endsWith('\n')) return { ok: false, reason: 'the signature block does not end with a newline' };

  let verified = false;
  for (const line of signatureLines.slice(0, -1).split('\n')) {
    const match = /^\u2014 (\S+) ([A-Za-z0-9+/]+={0,2})$/.exec(line);
    if (!match) return { ok: false, reason: 'a signature line is malformed' };
    if (match[1] !== key.name) continue;
    const bytes = Buffer.from(match[2]!, 'base64');
    // Base64 with other unused bits decodes to the same bytes: only the canonical text is the note.
    if (bytes.toString('base64') !== match[2]) return { ok: false, reason: 'a signature line is not canonical base64' };
    if (bytes.length !== 68 || !bytes.subarray(0, 4).equals(key.keyId)) continue;
    if (verify(null, Buffer.from(body, 'utf8'), key.publicKey, bytes.subarray(4))) verified = true;
    else return { ok: false, reason: 'the signature by the trusted key does not verify' };
  }
  if (!verified) return { ok: false, reason: 'no signature by the trusted key' };
  return { ok: true, checkpoint: { origin, size: Number(sizeText), root } };
}
