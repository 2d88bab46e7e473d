import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { createDataSource, openExistingDatabase } from '../data-source.js';
import { ApiKeyService } from '../platform/auth/api-key.service.js';
import { TransactionRunner } from '../platform/database/transaction-runner.js';
import { isScope, SCOPES, type Scope } from '../platform/auth/scopes.js';
import { loadConfig } from '../platform/config/config.js';
import { AUDIT_USAGE, runAuditCommand } from '../audit/cli/audit-cli.js';
import { POLICY_USAGE } from '../policy/cli/policy-cli.js';
import { loadPolicyBundle } from '../policy/domain/loader.js';
import { countProcessing } from '../subjects/processing-counts.js';
import { recordsOfProcessing, recordsOfProcessingMarkdown, retiredPolicyCounts } from '../subjects/records-of-processing.js';

const USAGE = `usage: sluice <command>

  db migrate                               apply pending database migrations
  keys create --scopes <s,...> [--name <name>]  create an API key (scopes: ${SCOPES.join(', ')})
${POLICY_USAGE}
${AUDIT_USAGE}
  report ropa [--since <date>] [--until <date>] [--format md|json] [--controller <name>]
                                           records of processing (GDPR Art. 30) from the active
                                           policies, with the log's counts for the period

The database is chosen as for the server: DATABASE_URL, else SQLITE_PATH (default data/sluice.db).
`;

export async function runCli(argv: string[], out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const [group, verb, ...rest] = argv;
  if (group === 'audit') return runAuditCommand(verb, rest, process.env, { out, err: process.stderr });
  const config = loadConfig(process.env);
  if (group === 'db' && verb === 'migrate') {
    const dataSource = createDataSource(config.database);
    await dataSource.initialize();
    try {
      const applied = await dataSource.runMigrations({ transaction: 'each' });
      out.write(applied.length ? `applied: ${applied.map((m) => m.name).join(', ')}\n` : 'the schema is up to date\n');
      return 0;
    } finally {
      await dataSource.destroy();
    }
  }
  if (group === 'report' && verb === 'ropa') {
    const { values } = parseArgs({ args: rest, options: { since: { type: 'string' }, until: { type: 'string' }, format: { type: 'string' }, controller: { type: 'string' } } });
    const until = values.until ? new Date(values.until) : new Date();
    const since = values.since ? new Date(values.since) : new Date(until.getTime() - 365 * 86_400_000);
    const format = values.format ?? 'md';
    const problems = [
      ...(Number.isNaN(since.getTime()) ? [`--since ${values.since} is not a date (2026-01-01, or a date and time)`] : []),
      ...(Number.isNaN(until.getTime()) ? [`--until ${values.until} is not a date (2026-01-01, or a date and time)`] : []),
      ...(!Number.isNaN(since.getTime()) && !Number.isNaN(until.getTime()) && since >= until ? ['--since must come before --until'] : []),
      ...(format !== 'md' && format !== 'json' ? [`--format ${format} is neither md nor json`] : []),
    ];
    if (problems.length > 0) {
      process.stderr.write(`report ropa: ${problems.join('; ')}\n`);
      return 2;
    }
    const bundle = loadPolicyBundle(config.policiesDir);
    const opened = await openExistingDatabase(config.database);
    if ('problem' in opened) {
      process.stderr.write(`report ropa: ${opened.problem}\n`);
      return 2;
    }
    const { dataSource } = opened;
    try {
      const counts = await countProcessing(dataSource, since, until);
      const records = recordsOfProcessing(bundle, counts);
      const retired = retiredPolicyCounts(bundle, counts);
      const controller = values.controller ?? '(name and contact details of the controller)';
      out.write(
        format === 'json'
          ? `${JSON.stringify({ controller, bundle: bundle.hash, period: { since: counts.since, until: counts.until }, records, retiredPolicies: retired, outsidePolicies: { denialsWithoutPolicy: counts.denialsWithoutPolicy, erasures: counts.erasures } }, null, 2)}\n`
          : recordsOfProcessingMarkdown(records, counts, controller, bundle.hash, retired),
      );
      return 0;
    } finally {
      await dataSource.destroy();
    }
  }
  if (group === 'keys' && verb === 'create') {
    const { values } = parseArgs({ args: rest, options: { name: { type: 'string' }, scopes: { type: 'string' } } });
    const scopes = (values.scopes ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    const unknown = scopes.filter((s) => !isScope(s));
    if (scopes.length === 0 || unknown.length > 0) {
      process.stderr.write(unknown.length ? `unknown scope(s): ${unknown.join(', ')}\n` : USAGE);
      return 2;
    }
    const dataSource = createDataSource(config.database);
    await dataSource.initialize();
    try {
      await dataSource.runMigrations({ transaction: 'each' });
      const { id, secret } = await new ApiKeyService(new TransactionRunner(dataSource)).create(values.name ?? `created ${new Date().toISOString()}`, scopes as Scope[]);
      out.write(`created ${id} (${scopes.join(' ')})\nsecret, shown only now: ${secret}\n`);
      return 0;
    } finally {
      await dataSource.destroy();
    }
  }
  process.stderr.write(USAGE);
  return 2;
}
