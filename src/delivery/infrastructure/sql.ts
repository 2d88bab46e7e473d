import type { EntityManager } from 'typeorm';

/** Bind parameters as the dialect writes them: $1 on PostgreSQL, ? on SQLite (which binds in textual order). */
export function placeholders(manager: EntityManager): (n: number) => string {
  return manager.connection.options.type === 'postgres' ? (n) => `$${n}` : () => '?';
}

/**
 * The rows an UPDATE ... RETURNING gave back: PostgreSQL's driver answers [rows, count] for an
 * UPDATE, SQLite's the rows themselves.
 */
export function updatedRows<T>(manager: EntityManager, result: unknown): T[] {
  return (manager.connection.options.type === 'postgres' ? (result as [T[], number])[0] : result) as T[];
}
