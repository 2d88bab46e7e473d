import { Inject, Injectable } from '@nestjs/common';
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { KEY_MATERIAL, type KeyMaterial } from '../platform/crypto/key-material.js';
import { inGroupsOf, Sql } from '../platform/database/sql.js';
import { keyedDigest, sealField, subjectPseudonym } from './domain/pseudonym.js';

export interface Subject {
  type: string;
  id: string;
}

/** A key read in this transaction was destroyed by another before it could be used. */
export class SubjectKeyDestroyed extends Error {
  constructor() {
    super('a subject key was destroyed while this transaction used it');
    this.name = 'SubjectKeyDestroyed';
  }
}

/** The keys of a set of subjects, read in one transaction: pseudonyms, digests and seals under them. */
export class SubjectKeyRing {
  private readonly pseudonyms = new Map<string, string>();

  constructor(private readonly keys: ReadonlyMap<string, Buffer>) {}

  pseudonym(subject: Subject): string {
    const name = subjectName(subject);
    let pseudonym = this.pseudonyms.get(name);
    if (pseudonym === undefined) this.pseudonyms.set(name, (pseudonym = subjectPseudonym(this.key(subject), subject)));
    return pseudonym;
  }

  digest(subject: Subject, value: string): string {
    return keyedDigest(this.key(subject), value);
  }

  /** Seals a personal value under the subject's key, bound to `context` (see sealField). */
  seal(subject: Subject, value: string, context: string): string {
    return sealField(this.key(subject), value, context);
  }

  private key(subject: Subject): Buffer {
    const key = this.keys.get(subjectName(subject));
    if (!key) throw new Error('subject key not loaded for this subject');
    return key;
  }
}

function subjectName(subject: Subject): string {
  return `${subject.type}:${subject.id}`;
}

/** Key rows read earlier in a transaction: the lookup of every subject asked for (by subject), and the rows found. */
export interface SubjectKeysRead {
  lookups: ReadonlyMap<string, string>;
  rows: ReadonlyMap<string, KeyRow>;
}

interface KeyRow {
  lookup: string;
  wrapped_key: string | null;
  created_at: string;
  destroyed_at: string | null;
  last_used_at: string | null;
}

/**
 * PostgreSQL advisory locks of the two-key form (a key space apart from the one-key locks
 * `TransactionRunner.exclusive` takes): this class holds subjects against erasure.
 */
const ERASURE_LOCKS = 0x736b6579;

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
    return (await this.keysFor(manager, [subject])).pseudonym(subject);
  }

  async digest(manager: EntityManager, subject: Subject, value: string): Promise<string> {
    return (await this.keysFor(manager, [subject])).digest(subject, value);
  }

  /** Seals a personal value under the subject's key, bound to `context` (see sealField). */
  async seal(manager: EntityManager, subject: Subject, value: string, context: string): Promise<string> {
    return (await this.keysFor(manager, [subject])).seal(subject, value, context);
  }

  /** The subject's current key without creating one: undefined if they have none (never seen, or erased). */
  async existingKey(manager: EntityManager, subject: Subject): Promise<Buffer | undefined> {
    const lookup = this.lookupOf(subject);
    const [row] = await this.readRows(manager, [lookup]);
    return row?.wrapped_key ? this.unwrap(row.wrapped_key, lookup) : undefined;
  }

  /**
   * The keys of these subjects, each created on first use, in the caller's transaction: one read
   * for all of them (a batch of shares names the same people again and again). After an erasure
   * the person gets a new key: what is recorded about them from then on cannot be linked to what
   * was erased. Nothing is kept across transactions: a key destroyed by another replica is
   * never used from memory. `earlier`: what `read` found for some of them in this transaction.
   */
  async keysFor(manager: EntityManager, subjects: Subject[], earlier?: SubjectKeysRead): Promise<SubjectKeyRing> {
    const sql = Sql.of(manager);
    const lookups = new Map<string, { subject: Subject; lookup: string }>();
    for (const subject of subjects) {
      const name = subjectName(subject);
      if (!lookups.has(name)) lookups.set(name, { subject, lookup: earlier?.lookups.get(name) ?? this.lookupOf(subject) });
    }
    // In lookup order, so two transactions that create or touch the same keys wait for each other in one order only.
    const wanted = [...lookups.values()].sort((a, b) => (a.lookup < b.lookup ? -1 : 1));
    // What the caller read earlier in this transaction (see `read`) is not read again.
    const unread = wanted.filter((w) => !earlier?.lookups.has(subjectName(w.subject))).map((w) => w.lookup);
    const rows = new Map(wanted.flatMap((w) => earlier?.rows.get(w.lookup) ?? []).map((r) => [r.lookup, r]));
    for (const row of await this.readRows(manager, unread)) rows.set(row.lookup, row);
    const now = new Date().toISOString();
    const absent = wanted.filter((w) => !rows.has(w.lookup));
    const erased = wanted.filter((w) => rows.get(w.lookup)?.wrapped_key === null);
    if (absent.length > 0) {
      // Insert-if-absent, then read: under concurrency the first writer wins and everyone uses its key.
      await sql.insert(
        manager,
        'subject_keys',
        ['lookup', 'subject_type', 'wrapped_key', 'created_at', 'destroyed_at', 'last_used_at'],
        absent.map((w) => [w.lookup, w.subject.type, this.wrap(randomBytes(32), w.lookup), now, null, now]),
        { on: ['lookup'] },
      );
    }
    for (const { lookup } of erased) {
      await sql.execute(manager, `UPDATE subject_keys SET wrapped_key = ${sql.params(1)}, created_at = ${sql.params(1, 2)}, destroyed_at = NULL WHERE lookup = ${sql.params(1, 3)} AND wrapped_key IS NULL`, [
        this.wrap(randomBytes(32), lookup),
        now,
        lookup,
      ]);
    }
    if (absent.length + erased.length > 0) {
      for (const row of await this.readRows(manager, [...absent, ...erased].map((w) => w.lookup))) rows.set(row.lookup, row);
    }
    const stale = wanted.filter((w) => rows.get(w.lookup)?.last_used_at?.slice(0, 10) !== now.slice(0, 10)).map((w) => w.lookup);
    for (const group of inGroupsOf(stale)) {
      // Only keys that still exist: one a retention sweep destroyed since it was read here must not
      // be used. The transaction fails instead (a group commit of shares then tries each again
      // alone, reading afresh: the person gets a new key).
      const touched = await sql.rows(manager, `UPDATE subject_keys SET last_used_at = ${sql.params(1)} WHERE lookup IN (${sql.params(group.length, 2)}) AND wrapped_key IS NOT NULL RETURNING lookup`, [now, ...group]);
      if (touched.length !== group.length) throw new SubjectKeyDestroyed();
    }
    const keys = new Map<string, Buffer>();
    for (const [name, { lookup }] of lookups) {
      const wrapped = rows.get(lookup)?.wrapped_key;
      if (!wrapped) throw new Error('subject key was destroyed while in use');
      keys.set(name, this.unwrap(wrapped, lookup));
    }
    return new SubjectKeyRing(keys);
  }

  /**
   * Reads these subjects' key rows in the caller's transaction, creating and touching nothing:
   * for `keysFor` later in the same transaction, so that the read can share a round trip with
   * other statements.
   */
  async read(manager: EntityManager, subjects: Subject[]): Promise<SubjectKeysRead> {
    const lookups = new Map<string, string>();
    for (const subject of subjects) {
      const name = subjectName(subject);
      if (!lookups.has(name)) lookups.set(name, this.lookupOf(subject));
    }
    const rows = await this.readRows(manager, [...lookups.values()].sort());
    return { lookups, rows: new Map(rows.map((row) => [row.lookup, row])) };
  }

  /** Whether any of these subjects, as `read` found them, has a key made after `since` (ISO 8601). */
  createdSince(read: SubjectKeysRead, subjects: Subject[], since: string): boolean {
    return subjects.some((subject) => {
      const lookup = read.lookups.get(subjectName(subject));
      const row = lookup === undefined ? undefined : read.rows.get(lookup);
      return row !== undefined && row.wrapped_key !== null && row.created_at > since;
    });
  }

  /** Of these subjects, as `read` found them, those whose key is destroyed: when, by lookup. */
  destroyedAmong(read: SubjectKeysRead, subjects: Subject[]): Map<string, string> {
    const destroyed = new Map<string, string>();
    for (const subject of subjects) {
      const lookup = read.lookups.get(subjectName(subject));
      const row = lookup === undefined ? undefined : read.rows.get(lookup);
      if (row && row.wrapped_key === null) destroyed.set(row.lookup, row.destroyed_at ?? '');
    }
    return destroyed;
  }

  /**
   * Holds these subjects against erasure until the transaction ends (PostgreSQL; SQLite runs one
   * writing transaction at a time). An erasure that began first is waited for, so that the keys
   * read afterwards show it; one that begins later waits for this transaction, and then finds and
   * clears what it wrote. Shared locks on 4,096 buckets of subjects rather than one per subject:
   * a batch of shares can name thousands of people.
   */
  async holdAgainstErasure(manager: EntityManager, subjects: Subject[]): Promise<void> {
    const sql = Sql.of(manager);
    if (sql.dialect !== 'postgres') return;
    const buckets = [...new Set(subjects.map((subject) => this.bucketOf(subject)))].sort((a, b) => a - b);
    await sql.rows(manager, `SELECT pg_advisory_xact_lock_shared(${ERASURE_LOCKS}, b) FROM unnest(${sql.params(1)}::int[]) AS b`, [buckets]);
  }

  /**
   * Waits for the transactions that hold this subject against erasure (`holdAgainstErasure`) to
   * end, and keeps new ones waiting until this one ends (PostgreSQL): an erasure's reads then see
   * everything a share in flight wrote about the subject.
   */
  async excludeHolders(manager: EntityManager, subject: Subject): Promise<void> {
    const sql = Sql.of(manager);
    if (sql.dialect === 'postgres') await sql.rows(manager, `SELECT pg_advisory_xact_lock(${ERASURE_LOCKS}, ${sql.params(1)})`, [this.bucketOf(subject)]);
  }

  /**
   * Crypto-shredding: destroys the subject's key, so every pseudonym, digest and sealed value made
   * with it can no longer be tied to them. Stamps the time even on a key destroyed before (by a
   * retention sweep): a share decided before this erasure and recorded after it tells the two apart by it
   * (ShareRecorder).
   */
  async destroy(manager: EntityManager, subject: Subject): Promise<void> {
    const sql = Sql.of(manager);
    await sql.execute(manager, `UPDATE subject_keys SET wrapped_key = NULL, destroyed_at = ${sql.params(1)} WHERE lookup = ${sql.params(1, 2)}`, [new Date().toISOString(), this.lookupOf(subject)]);
  }

  /**
   * Audit retention: destroys every key not used since `cutoff`, but those of the subjects in
   * `keep`, so what the log holds about people sluice has not processed within the retention
   * period can no longer be tied to them. Returns how many keys were destroyed, per subject type,
   * and which of some subjects had theirs destroyed. The update checks each key again: one a
   * concurrent transaction has just used (and so touched) is kept. A key's use is recorded once a
   * day (its first use that day, see keysFor), so one last recorded on the cutoff's day may have
   * been used after the cutoff: only keys last recorded on an earlier day go.
   */
  async destroyUnusedSince(manager: EntityManager, cutoff: Date, keep: Subject[] = []): Promise<{ counts: Record<string, number>; destroyed: (subject: Subject) => boolean }> {
    const sql = Sql.of(manager);
    const kept = new Set(keep.map((subject) => this.lookupOf(subject)));
    // The cutoff's date (YYYY-MM-DD) sorts before every time of that day, and after every earlier one.
    const usedBefore = cutoff.toISOString().slice(0, 10);
    const stale = await sql.rows<{ lookup: string }>(manager, `SELECT lookup FROM subject_keys WHERE destroyed_at IS NULL AND last_used_at < ${sql.params(1)} ORDER BY lookup`, [usedBefore]);
    const now = new Date().toISOString();
    const counts: Record<string, number> = {};
    const gone = new Set<string>();
    for (const group of inGroupsOf(stale.map((row) => row.lookup).filter((lookup) => !kept.has(lookup)))) {
      const destroyed = await sql.rows<{ lookup: string; subject_type: string }>(
        manager,
        `UPDATE subject_keys SET wrapped_key = NULL, destroyed_at = ${sql.params(1)}
           WHERE destroyed_at IS NULL AND last_used_at < ${sql.params(1, 2)} AND lookup IN (${sql.params(group.length, 3)}) RETURNING lookup, subject_type`,
        [now, usedBefore, ...group],
      );
      for (const { lookup, subject_type: type } of destroyed) {
        counts[type] = (counts[type] ?? 0) + 1;
        gone.add(lookup);
      }
    }
    return { counts, destroyed: (subject) => gone.has(this.lookupOf(subject)) };
  }

  private lookupOf(subject: Subject): string {
    return createHmac('sha256', this.lookupKey).update(`${subject.type}:${subject.id}`).digest('hex');
  }

  private bucketOf(subject: Subject): number {
    return Number.parseInt(this.lookupOf(subject).slice(0, 3), 16);
  }

  private async readRows(manager: EntityManager, lookups: string[]): Promise<KeyRow[]> {
    const sql = Sql.of(manager);
    const rows: KeyRow[] = [];
    for (const group of inGroupsOf(lookups)) rows.push(...(await sql.rows<KeyRow>(manager, `SELECT lookup, wrapped_key, created_at, destroyed_at, last_used_at FROM subject_keys WHERE lookup IN (${sql.params(group.length)})`, group)));
    return rows;
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
