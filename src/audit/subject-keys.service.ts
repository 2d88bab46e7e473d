import { Inject, Injectable } from '@nestjs/common';
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { type EntityManager, IsNull, LessThan } from 'typeorm';
import { KEY_MATERIAL, type KeyMaterial } from '../platform/crypto/key-material.js';
import { keyedDigest, sealField, subjectPseudonym } from './domain/pseudonym.js';
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

  /** Seals a personal value under the subject's key, bound to `context` (see sealField). */
  async seal(manager: EntityManager, subject: Subject, value: string, context: string): Promise<string> {
    return sealField(await this.keyFor(manager, subject), value, context);
  }

  /** The subject's current key without creating one: undefined if they have none (never seen, or erased). */
  async existingKey(manager: EntityManager, subject: Subject): Promise<Buffer | undefined> {
    const lookup = this.lookupOf(subject);
    const row = await manager.getRepository(SubjectKeyEntity).findOneBy({ lookup });
    return row?.wrappedKey ? this.unwrap(row.wrappedKey, lookup) : undefined;
  }

  /**
   * Crypto-shredding: destroys the subject's key, so every pseudonym, digest and sealed value made
   * with it can no longer be tied to them. Returns false if there was no key to destroy.
   */
  async destroy(manager: EntityManager, subject: Subject): Promise<boolean> {
    const { affected } = await manager
      .getRepository(SubjectKeyEntity)
      .update({ lookup: this.lookupOf(subject), destroyedAt: IsNull() }, { wrappedKey: null, destroyedAt: new Date().toISOString() });
    return (affected ?? 0) > 0;
  }

  /**
   * Audit retention: destroys every key not used since `cutoff`, so what the log holds about
   * people sluice has not processed within the retention period can no longer be tied to them.
   * Returns how many keys were destroyed, per subject type.
   */
  async destroyUnusedSince(manager: EntityManager, cutoff: Date): Promise<Record<string, number>> {
    const repo = manager.getRepository(SubjectKeyEntity);
    const stale = await repo.find({ select: { lookup: true, subjectType: true }, where: { destroyedAt: IsNull(), lastUsedAt: LessThan(cutoff.toISOString()) } });
    const counts: Record<string, number> = {};
    const now = new Date().toISOString();
    for (const row of stale) {
      const { affected } = await repo.update({ lookup: row.lookup, destroyedAt: IsNull() }, { wrappedKey: null, destroyedAt: now });
      if (affected) counts[row.subjectType] = (counts[row.subjectType] ?? 0) + 1;
    }
    return counts;
  }

  private lookupOf(subject: Subject): string {
    return createHmac('sha256', this.lookupKey).update(`${subject.type}:${subject.id}`).digest('hex');
  }

  /**
   * The subject's key, created on first use. After an erasure the person gets a new key: what is
   * recorded about them from then on cannot be linked to what was erased. Runs inside the
   * caller's transaction.
   */
  private async keyFor(manager: EntityManager, subject: Subject): Promise<Buffer> {
    const lookup = this.lookupOf(subject);
    const repo = manager.getRepository(SubjectKeyEntity);
    let row = await repo.findOneBy({ lookup });
    if (row && row.wrappedKey === null) {
      await repo.update({ lookup, wrappedKey: IsNull() }, { wrappedKey: this.wrap(randomBytes(32), lookup), createdAt: new Date().toISOString(), destroyedAt: null });
      row = await repo.findOneByOrFail({ lookup });
    }
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
          lastUsedAt: new Date().toISOString(),
        })
        .orIgnore()
        .execute();
      row = await repo.findOneByOrFail({ lookup });
    }
    if (row.wrappedKey === null) throw new Error('subject key was destroyed while in use');
    const now = new Date().toISOString();
    if (row.lastUsedAt?.slice(0, 10) !== now.slice(0, 10)) await repo.update({ lookup }, { lastUsedAt: now });
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
