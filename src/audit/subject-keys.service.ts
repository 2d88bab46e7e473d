import { Inject, Injectable } from '@nestjs/common';
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { KEY_MATERIAL, type KeyMaterial } from '../platform/crypto/key-material.js';
import { keyedDigest, subjectPseudonym } from './domain/pseudonym.js';
import { SubjectKeyEntity } from './infrastructure/audit.entities.js';

export interface Subject {
  type: string;
  id: string;
}

/**
 * Per-subject keys: a random 256-bit key per person, stored wrapped (AES-256-GCM) under a key
 * derived from the master key. Pseudonyms and digests in the audit log are keyed by it, so
 * destroying it makes that person's entries unlinkable without touching the log.
 */
@Injectable()
export class SubjectKeyService {
  private readonly lookupKey: Buffer;
  private readonly wrappingKey: Buffer;

  constructor(@Inject(KEY_MATERIAL) keys: KeyMaterial) {
    this.lookupKey = Buffer.from(hkdfSync('sha256', keys.masterKey, Buffer.alloc(0), 'sluice subject-key lookup v1', 32));
    this.wrappingKey = Buffer.from(hkdfSync('sha256', keys.masterKey, Buffer.alloc(0), 'sluice subject-key wrap v1', 32));
  }

  async pseudonym(manager: EntityManager, subject: Subject): Promise<string> {
    return subjectPseudonym(await this.keyFor(manager, subject), subject);
  }

  async digest(manager: EntityManager, subject: Subject, value: string): Promise<string> {
    return keyedDigest(await this.keyFor(manager, subject), value);
  }

  /** The subject's key, created on first use. Runs inside the caller's transaction. */
  private async keyFor(manager: EntityManager, subject: Subject): Promise<Buffer> {
    const lookup = createHmac('sha256', this.lookupKey).update(`${subject.type}:${subject.id}`).digest('hex');
    const repo = manager.getRepository(SubjectKeyEntity);
    let row = await repo.findOneBy({ lookup });
    if (!row) {
      // Insert-if-absent, then read: under concurrency the first writer wins and everyone uses its key.
      await repo
        .createQueryBuilder()
        .insert()
        .values({
          lookup,
          subjectType: subject.type,
          wrappedKey: this.wrap(randomBytes(32), lookup),
          createdAt: new Date().toISOString(),
          destroyedAt: null,
        })
        .orIgnore()
        .execute();
      row = await repo.findOneByOrFail({ lookup });
    }
    if (row.wrappedKey === null) throw new Error('subject key was destroyed');
    return this.unwrap(row.wrappedKey, lookup);
  }

  private wrap(key: Buffer, lookup: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.wrappingKey, iv);
    cipher.setAAD(Buffer.from(lookup));
    const sealed = Buffer.concat([cipher.update(key), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64');
  }

  private unwrap(wrapped: string, lookup: string): Buffer {
    const bytes = Buffer.from(wrapped, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.wrappingKey, bytes.subarray(0, 12));
    decipher.setAAD(Buffer.from(lookup));
    decipher.setAuthTag(bytes.subarray(12, 28));
    return Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]);
  }
}
