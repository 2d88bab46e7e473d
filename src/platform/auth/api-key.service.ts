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

@Injectable()
export class ApiKeyService {
  private readonly logger = new Logger('ApiKeys');
  /** Every request looks its key up: concurrent requests share one query (plain SQL, no find builder). */
  private readonly keys: ReadBatcher<string, Pick<ApiKeyEntity, 'id' | 'name' | 'keyHash' | 'scopes'> | undefined>;

  private readonly dataSource: DataSource;

  /** Reads go where the runner reads (the server's SQLite reader: never a key still inside an open transaction). */
  constructor(@Inject(TransactionRunner) transactions: TransactionRunner) {
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

  async authenticate(secret: string): Promise<AuthenticatedKey | undefined> {
    const keyHash = hashApiKey(secret);
    const row = await this.keys.get(keyHash);
    // The lookup is by hash, so the comparison below is on hashes of equal length; it guards
    // against a database collation that compares case-insensitively.
    if (!row || !timingSafeEqual(Buffer.from(row.keyHash), Buffer.from(keyHash))) return undefined;
    return { id: row.id, name: row.name, scopes: scopeSet(row.scopes) };
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
    await this.dataSource.getRepository(ApiKeyEntity).insert({
      id,
      name,
      keyHash: hashApiKey(secret),
      scopes: scopes.join(' '),
      createdAt: new Date().toISOString(),
    });
    return id;
  }
}
