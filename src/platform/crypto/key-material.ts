import { createPrivateKey, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SluiceConfig } from '../config/config.js';

export interface KeyMaterial {
  auditSigningKey: KeyObject;
  masterKey: Buffer;
}

export const KEY_MATERIAL = Symbol('KEY_MATERIAL');

/**
 * The configured keys, or for the embedded default keys generated on first start and kept in the
 * data folder (readable by the owner only), so a restart keeps signing the same log.
 */
export function loadKeyMaterial(config: SluiceConfig): KeyMaterial {
  return {
    auditSigningKey: config.auditSigningKey ?? loadOrCreate(join(config.dataDir, 'audit-signing-key.pem'),
      () => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      (text) => createPrivateKey(text)),
    masterKey: config.masterKey ?? loadOrCreate(join(config.dataDir, 'master.key'),
      () => randomBytes(32).toString('base64'),
      (text) => Buffer.from(text.trim(), 'base64')),
  };
}

function loadOrCreate<T>(path: string, generate: () => string, parse: (text: string) => T): T {
  if (!existsSync(path)) {
    mkdirSync(join(path, '..'), { recursive: true });
    // 'wx' fails if another process created the file meanwhile; it then reads that one.
    try {
      writeFileSync(path, generate(), { mode: 0o600, flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  return parse(readFileSync(path, 'utf8'));
}
