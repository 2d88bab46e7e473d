/** Layer rules of sluice (DESIGN.md): `npm run lint` fails when one is broken. */
module.exports = {
  forbidden: [
    {
      name: 'pure-domain',
      comment: 'The policy evaluator and the Merkle log are plain TypeScript: no Nest, no database, no other layer.',
      severity: 'error',
      from: { path: '^src/(policy|audit)/domain/' },
      to: { path: '^(src|migrations)/', pathNot: '^src/(policy|audit)/domain/' },
    },
    {
      name: 'domain-no-frameworks',
      severity: 'error',
      from: { path: '^src/(policy|audit)/domain/' },
      to: { path: 'node_modules/(@nestjs|typeorm|better-sqlite3|pg|fastify|@opentelemetry|pino)/' },
    },
    {
      name: 'tracing-loads-first-and-alone',
      comment:
        'src/tracing.ts runs before the application is imported (main.ts) so the instrumentations are in place when their modules load: it and the SDK setup it imports may import each other only, never the application.',
      severity: 'error',
      from: { path: '^src/(tracing|platform/observability/(telemetry-sdk|telemetry-settings|span-sanitiser))\\.ts$' },
      to: { path: '^src/', pathNot: '^src/platform/observability/(telemetry-sdk|telemetry-settings|span-sanitiser)\\.ts$' },
    },
    {
      name: 'media-and-policy-cli-stay-plain',
      comment: 'Media minimisation and the policy CLI (lint, test, diff, explain) run without the server: no Nest, no database.',
      severity: 'error',
      from: { path: '^src/policy/(media|cli)/|^src/policy/media-preparation\\.ts$' },
      to: { path: ['node_modules/(@nestjs|typeorm|better-sqlite3|pg|fastify)/', '^src/(platform|shares|consent|delivery|audit|workplace)/'] },
    },
    {
      name: 'media-is-its-own',
      comment: 'Media minimisation depends on nothing else of sluice.',
      severity: 'error',
      from: { path: '^src/policy/media/' },
      to: { path: '^src/', pathNot: '^src/policy/media/' },
    },
    {
      name: 'audit-verifier-ships-alone',
      comment:
        'The offline verifier (npx sluice audit verify) depends on nothing of the server: only the audit domain (Merkle tree, checkpoints, canonical JSON), node built-ins and ajv, so a DPO can be given it alone.',
      severity: 'error',
      from: { path: '^src/audit/verifier/' },
      to: { pathNot: ['^src/audit/(verifier|domain)/', '^node_modules/ajv/'], dependencyTypesNot: ['core'] },
    },
    {
      name: 'platform-is-below-contexts',
      comment: 'platform/ serves the bounded contexts and must not reach into them (health reads the policy registry only).',
      severity: 'error',
      from: { path: '^src/platform/', pathNot: '^src/platform/health/' },
      to: { path: '^src/(shares|consent|delivery|audit|policy|workplace)/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-test',
      severity: 'error',
      from: { pathNot: '^test/' },
      to: { path: '^test/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js'] },
    exclude: { path: '\\.spec\\.ts$' },
  },
};
