import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { createDataSource } from '../data-source.js';
import { ApiKeyService } from '../platform/auth/api-key.service.js';
import { isScope, SCOPES, type Scope } from '../platform/auth/scopes.js';
import { ConfigError, loadConfig } from '../platform/config/config.js';
import { POLICY_USAGE, runPolicyCommand } from '../policy/cli/policy-cli.js';

const USAGE = `usage: sluice <command>

  db migrate                               apply pending database migrations
  keys create --name <name> --scopes <s,...>  create an API key (scopes: ${SCOPES.join(', ')})
${POLICY_USAGE}

The database is chosen as for the server: DATABASE_URL, else SQLITE_PATH (default data/sluice.db).
`;

export async function runCli(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const [group, verb, ...rest] = argv;
  if (group === 'policy') return runPolicyCommand(verb, rest, process.env, { out, err: process.stderr });
  const config = loadConfig(process.env);
  const dataSource = createDataSource(config.database);
  if (group === 'db' && verb === 'migrate') {
    await dataSource.initialize();
    try {
      const applied = await dataSource.runMigrations({ transaction: 'each' });
      out.write(applied.length ? `applied: ${applied.map((m) => m.name).join(', ')}\n` : 'the schema is up to date\n');
      return 0;
    } finally {
      await dataSource.destroy();
    }
  }
  if (group === 'keys' && verb === 'create') {
    const { values } = parseArgs({ args: rest, options: { name: { type: 'string' }, scopes: { type: 'string' } } });
    const scopes = (values.scopes ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    const unknown = scopes.filter((s) => !isScope(s));
    if (!values.name || scopes.length === 0 || unknown.length > 0) {
      process.stderr.write(unknown.length ? `unknown scope(s): ${unknown.join(', ')}\n` : USAGE);
      return 2;
    }
    await dataSource.initialize();
    try {
      await dataSource.runMigrations({ transaction: 'each' });
      const { id, secret } = await new ApiKeyService(dataSource).create(values.name, scopes as Scope[]);
      out.write(`created ${id} (${scopes.join(' ')})\nsecret, shown only now: ${secret}\n`);
      return 0;
    } finally {
      await dataSource.destroy();
    }
  }
  process.stderr.write(USAGE);
  return 2;
}

runCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof ConfigError ? error.message : String((error as Error)?.stack ?? error)}\n`);
    process.exit(1);
  },
);
