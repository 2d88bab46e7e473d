import pg from 'pg';

/**
 * Runs once before the suites and tells them (through the environment) whether PostgreSQL can be
 * reached, because describe blocks are collected synchronously and cannot wait for a connection.
 */
export default async function globalSetup() {
  const url = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  const available = await client
    .connect()
    .then(() => client.query('SELECT 1'))
    .then(
      () => true,
      () => false,
    );
  await client.end().catch(() => undefined);
  process.env.SLUICE_TEST_POSTGRES = available ? 'available' : 'unavailable';
  if (!available && process.env.CI === 'true') {
    process.stderr.write(`\nPostgreSQL at ${url} is not reachable and CI=true: the PostgreSQL suites will fail.\n`);
  }
}
