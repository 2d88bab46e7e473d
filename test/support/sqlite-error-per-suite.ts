import { createRequire } from 'node:module';

/**
 * better-sqlite3 gives its native addon the error class to throw once per process, and jest loads
 * a native addon once per process but every JavaScript module once per test file. Without this,
 * every suite after the first would get SQLite errors of the first suite's class: not an
 * `instanceof Error` there, so `rejects.toThrow()` called a failed insert a success, and the
 * gateway's own `instanceof Error` checks saw a plain object. Production has one module graph.
 */
const require = createRequire(import.meta.url);
const addon = require(require.resolve('better-sqlite3/build/Release/better_sqlite3.node')) as { setErrorConstructor(errorClass: unknown): void };
addon.setErrorConstructor((require('better-sqlite3') as { SqliteError: unknown }).SqliteError);
