import { Inject, Injectable, Logger } from '@nestjs/common';
import { hash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { ReadBatcher } from '../database/read-batcher.js';
import { Sql } from '../database/sql.js';
import { TransactionRunner } from '../database/transaction-runner.js';
import { ApiKeyEntity } from './api-key.entity.js';
import { SCOPES, type Scope } from './scopes.js';

export interface AuthenticatedKey {
  id: string;
  name: string;
  scopes: ReadonlySet<Scope>;
}

export function hashApiKey(secret: string): string {
  // One-shot hash: the same hex digest as createHash().update().digest(), at half the cost per request.
  return hash('sha256', secret, 'hex');
}

/** Parsed scope lists by their stored text: keys share a handful of them, and every request needs its key's. */
const scopeSets = new Map<string, ReadonlySet<Scope>>();
const MAX_SCOPE_SETS = 1000;

function scopeSet(scopes: string): ReadonlySet<Scope> {
  let set = scopeSets.get(scopes);
  if (!set) {
    if (scopeSets.size >= MAX_SCOPE_SETS) scopeSets.clear();
    scopeSets.set(scopes, (set = new Set(scopes.split(' ').filter(Boolean) as Scope[])));
  }
  return set;
}

/** Digests remembered as stored keys: more keys than a deployment has, about a megabyte. */
const MAX_KNOWN_DIGESTS = 10_000;
/** The least time between two loads of the stored keys' digests for keys not known yet (see knowsAfterReload). */
const STORED_KEYS_RELOAD_MS = 60_000;

@Injectable()
export class ApiKeyService {
  private readonly logger = new Logger('ApiKeys');
  /**
   * Digests of keys this process knows are stored: loaded at start, added when a key is created
   * here or found by a lookup. Only stored keys get in, so the set grows with the key table, not
   * with what callers send. It only says a lookup is worth making (see RequestAuthenticator): the
   * lookup still decides. Past its size, the first added is forgotten until it is found again.
   */
  private readonly knownDigests = new Set<string>();
  /** When the stored keys' digests were last loaded (ms, performance.now()). */
  private storedKeysLoadedAt = -Infinity;
  /** Every request looks its key up: concurrent requests share one query (plain SQL, no find builder). */
  private readonly keys: ReadBatcher<string, Pick<ApiKeyEntity, 'id' | 'name' | 'keyHash' | 'scopes'> | undefined>;

  private readonly dataSource: DataSource;

  /** Reads go where the runner reads (the server's SQLite reader: never a key still inside an open transaction). */
  constructor(@Inject(TransactionRunner) private readonly transactions: TransactionRunner) {
    this.dataSource = transactions.dataSource;
    this.keys = new ReadBatcher(transactions, async (manager, hashes) => {
      const sql = Sql.of(manager);
      const rows = await sql.rows<Pick<ApiKeyEntity, 'id' | 'name' | 'keyHash' | 'scopes'>>(
        manager,
        `SELECT id, name, key_hash AS "keyHash", scopes FROM api_keys WHERE key_hash IN (${sql.params(hashes.length)})`,
        hashes,
      );
      return hashes.map((hash) => rows.find((row) => row.keyHash === hash));
    });
  }

  /** Creates a key and returns its secret: the only time the secret exists outside the caller. */
  async create(name: string, scopes: readonly Scope[]): Promise<{ id: string; secret: string }> {
    const secret = `slk_${randomBytes(32).toString('base64url')}`;
    const id = await this.store(name, secret, scopes);
    return { id, secret };
  }

  /** The stored key whose secret has this digest (hashApiKey), if there is one. */
  async authenticate(keyHash: string): Promise<AuthenticatedKey | undefined> {
    const row = await this.keys.get(keyHash);
    // The lookup is by hash, so the comparison below is on hashes of equal length; it guards
    // against a database collation that compares case-insensitively.
    if (!row || !timingSafeEqual(Buffer.from(row.keyHash), Buffer.from(keyHash))) {
      // Removed from the table behind this process's back: its lookups count as failures again.
      this.knownDigests.delete(keyHash);
      return undefined;
    }
    this.remember(keyHash);
    return { id: row.id, name: row.name, scopes: scopeSet(row.scopes) };
  }

  /** Whether a key with this digest was stored when this process last looked (no database read). */
  isKnown(keyHash: string): boolean {
    return this.knownDigests.has(keyHash);
  }

  /**
   * Remembers the digests of the stored keys, newest first up to the limit: after a restart the
   * keys in use are known again without a lookup each (see RequestAuthenticator).
   */
  async rememberStoredKeys(): Promise<void> {
    this.storedKeysLoadedAt = performance.now();
    const rows = await this.transactions.read((manager) =>
      Sql.of(manager).rows<Pick<ApiKeyEntity, 'keyHash'>>(manager, `SELECT key_hash AS "keyHash" FROM api_keys ORDER BY created_at DESC LIMIT ${MAX_KNOWN_DIGESTS}`),
    );
    for (const { keyHash } of rows.reverse()) this.remember(keyHash);
  }

  /**
   * Whether a key with this digest is known, for a caller that may not look it up; if not, the
   * stored keys' digests are loaded again first, at most once a minute however many ask. A key
   * created since this process last loaded them (by `sluice keys create`, on another replica) is
   * thus known within a minute, where else it would only be once a lookup had found it.
   */
  async knowsAfterReload(keyHash: string): Promise<boolean> {
    if (!this.knownDigests.has(keyHash) && performance.now() - this.storedKeysLoadedAt >= STORED_KEYS_RELOAD_MS) await this.rememberStoredKeys();
    return this.knownDigests.has(keyHash);
  }

  /**
   * Makes sure a usable key exists at start: the bootstrap secret if configured (idempotent), else
   * on an empty key table a generated development key, printed once.
   */
  async ensureStartupKey(bootstrapSecret: string | undefined): Promise<void> {
    const repo = this.dataSource.getRepository(ApiKeyEntity);
    if (bootstrapSecret !== undefined) {
      const keyHash = hashApiKey(bootstrapSecret);
      const existing = await repo.findOneBy({ keyHash });
      if (!existing) await this.store('bootstrap', bootstrapSecret, SCOPES);
      else if (existing.scopes !== SCOPES.join(' ')) await repo.update({ id: existing.id }, { scopes: SCOPES.join(' ') });
      return;
    }
    if ((await repo.count()) > 0) return;
    const { secret } = await this.create('development', SCOPES);
    this.logger.warn(
      `No API key existed, so a development key with every scope was created. It is shown only now: ${secret}`,
    );
  }

  private async store(name: string, secret: string, scopes: readonly Scope[]): Promise<string> {
    const id = `key_${randomUUID().replaceAll('-', '')}`;
    const keyHash = hashApiKey(secret);
    await this.dataSource.getRepository(ApiKeyEntity).insert({ id, name, keyHash, scopes: scopes.join(' '), createdAt: new Date().toISOString() });
    this.remember(keyHash);
    return id;
  }

  private remember(keyHash: string): void {
    if (this.knownDigests.has(keyHash)) return;
    if (this.knownDigests.size >= MAX_KNOWN_DIGESTS) this.knownDigests.delete(this.knownDigests.values().next().value!);
    this.knownDigests.add(keyHash);
  }
}
