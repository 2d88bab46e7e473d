import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import { createHmac } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { schemasDir } from '../domain/data-categories.js';
import { evaluateShare, type ConsentState, type EvaluationTools, type ShareDecision } from '../domain/evaluator.js';
import type { PolicyBundle } from '../domain/loader.js';
import type { CompiledPolicy } from '../domain/policy.js';
import { readYamlSource, schemaErrorPath, simplifySchemaErrors } from '../domain/yaml-source.js';
import { prepareMedia } from '../media-preparation.js';

/** One case of `policies/tests/*.yaml`: a post, the consents on record, and what must come out. */
export interface PolicyTestCase {
  name: string;
  purpose: string;
  post: Record<string, unknown>;
  recipients: string[];
  /** `type:id` (e.g. whatsapp:31612345678) to granted or withdrawn, for the case's purpose unless `type:id@purpose`. */
  consents?: Record<string, 'granted' | 'withdrawn'>;
  expect: {
    status: ShareDecision['status'];
    reasons?: string[];
    recipients?: Record<string, 'allowed' | 'denied'>;
    /** The exact text sent: a text body, a media caption, or the template parameters joined by newlines. */
    message?: string | null;
    fields?: string[];
    dropped?: Record<string, string>;
    redactions?: Record<string, number>;
  };
}

export interface PolicyTestResult {
  /** The test file (relative to `<policies>/tests`), or for a policy without cases the policy file. */
  file: string;
  /** Where in `file` the case starts (0 when the result is about no one place). */
  line: number;
  name: string;
  failures: string[];
}

/** The key the `hash` transform uses in tests, so expected values are stable. */
const TEST_HASH_KEY = Buffer.from('sluice policy tests: not a production key');

const NO_POLICY_REASON = 'policy.none_matches';

/**
 * Runs every case of every `*.yaml` in `<policies>/tests`; a malformed file is a failure of its
 * own, and so is a policy that no case exercises (its behaviour would go unreviewed).
 */
export async function runPolicyTests(dir: string, bundle: PolicyBundle): Promise<PolicyTestResult[]> {
  const testsDir = join(dir, 'tests');
  const files = existsSync(testsDir) ? readdirSync(testsDir).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml')).sort() : [];
  const validate = new Ajv2020({ allErrors: true, strict: true }).compile(JSON.parse(readFileSync(join(schemasDir(), 'policy-test.schema.json'), 'utf8')));
  const results: PolicyTestResult[] = [];
  const exercised = new Set<string>();
  let malformed = false;
  for (const file of files) {
    const source = readYamlSource(readFileSync(join(testsDir, file), 'utf8'));
    if ('problems' in source) {
      malformed = true;
      results.push({ file, line: source.problems[0]!.line, name: '(file)', failures: source.problems.map((p) => `${p.line}:${p.column}: ${p.message}`) });
      continue;
    }
    if (!validate(source.value)) {
      malformed = true;
      const problems = simplifySchemaErrors(validate.errors ?? [])
        .map((e) => ({ ...source.positionOf(schemaErrorPath(e)), message: schemaProblem(e) }))
        .sort((a, b) => a.line - b.line || a.column - b.column);
      results.push({ file, line: problems[0]?.line ?? 0, name: '(file)', failures: problems.map((p) => `${p.line}:${p.column}: ${p.message}`) });
      continue;
    }
    for (const [index, testCase] of (source.value as { cases: PolicyTestCase[] }).cases.entries()) {
      const policy = bundle.select(testCase.purpose, 'workplace.post', 'whatsapp');
      if (policy) exercised.add(policy.name);
      results.push({ file, line: source.positionOf(['cases', index]).line, name: testCase.name, failures: await runCase(bundle, policy, testCase) });
    }
  }
  // Judged only when every file was read: the cases of a malformed one are not known.
  for (const policy of malformed ? [] : bundle.policies.filter((p) => !exercised.has(p.name))) {
    results.push({ file: policy.file, line: 0, name: `policy ${policy.name}`, failures: [`no test case exercises it: add cases with purpose ${policy.purpose} to ${join(dir, 'tests')}/*.yaml`] });
  }
  return results;
}

/** A schema error of a test file in a reviewer's words: where, and what is wrong there. */
function schemaProblem(error: ErrorObject): string {
  const where = error.instancePath.slice(1).replaceAll('/', '.');
  switch (error.keyword) {
    case 'required':
      return `${where || '(file)'} is missing ${String(error.params.missingProperty)}`;
    case 'additionalProperties':
      return `${where ? `${where}.` : ''}${String(error.params.additionalProperty)} is not a setting of a test file`;
    case 'enum':
      return `${where} must be one of ${(error.params.allowedValues as unknown[]).join(', ')}`;
    default:
      return `${where || '(file)'} ${error.message ?? 'is not valid'}`;
  }
}

async function runCase(bundle: PolicyBundle, policy: CompiledPolicy | undefined, testCase: PolicyTestCase): Promise<string[]> {
  // A misspelt purpose selects no policy, and the denial that follows would pass a case expecting one.
  if (!policy && !testCase.expect.reasons?.includes(NO_POLICY_REASON)) {
    return [
      `purpose ${testCase.purpose} selects no policy (the policies' purposes: ${bundle.policies.map((p) => p.purpose).join(', ') || 'none'}); ` +
        `to test that its shares are refused, expect reasons [${NO_POLICY_REASON}]`,
    ];
  }
  const consents = new Map<string, ConsentState>();
  for (const [subject, status] of Object.entries(testCase.consents ?? {})) {
    const [who, purpose = testCase.purpose] = subject.split('@');
    consents.set(`${who}@${purpose}`, status);
  }
  const tools: EvaluationTools = {
    consents: (subject, purpose) => consents.get(`${subject.type}:${subject.id}@${purpose}`) ?? 'none',
    keyedHash: (value) => `h_${createHmac('sha256', TEST_HASH_KEY).update(value).digest('base64url').slice(0, 22)}`,
  };
  const media = policy ? (await prepareMedia(policy, testCase.post)).outcomes : [];
  const decision = evaluateShare(
    policy,
    bundle.hash,
    { purpose: testCase.purpose, source: 'workplace.post', destination: 'whatsapp', post: testCase.post, recipients: testCase.recipients.map((waId) => ({ waId })), media },
    tools,
  );
  return compare(testCase.expect, observed(decision));
}

/** The decision in the shape a test case states its expectations. */
export function observed(decision: ShareDecision): Required<PolicyTestCase['expect']> {
  return {
    status: decision.status,
    reasons: decision.reasons,
    recipients: Object.fromEntries(decision.recipients.map((r) => [r.waId, r.decision])),
    message: messageText(decision),
    fields: decision.crossing.fields.map((f) => f.path),
    dropped: Object.fromEntries(decision.crossing.dropped.map((d) => [d.path, d.reason])),
    redactions: decision.crossing.redactions.reduce<Record<string, number>>((all, r) => ({ ...all, [r.recogniser]: (all[r.recogniser] ?? 0) + r.count }), {}),
  };
}

export function messageText(decision: ShareDecision): string | null {
  const outbound = decision.outbound;
  if (!outbound) return null;
  if (outbound.type === 'text') return outbound.body;
  if (outbound.type === 'template') return outbound.parameters.join('\n');
  return outbound.caption;
}

/** Every expectation that does not hold, as a readable -expected/+actual diff. */
function compare(expected: PolicyTestCase['expect'], actual: Required<PolicyTestCase['expect']>): string[] {
  const failures: string[] = [];
  for (const key of Object.keys(expected) as (keyof PolicyTestCase['expect'])[]) {
    const want = expected[key];
    const got = actual[key];
    if (isDeepStrictEqual(want, got)) continue;
    failures.push(`${key}:\n${diffLines(render(want), render(got))}`);
  }
  return failures;
}

function render(value: unknown): string[] {
  if (typeof value === 'string') return value.split('\n');
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    return Object.entries(value as Record<string, unknown>).map(([k, v]) => `${k}: ${JSON.stringify(v)}`);
  }
  if (Array.isArray(value)) return value.map((v) => String(v));
  return [JSON.stringify(value)];
}

/** A line diff small enough for test output: lines only expected (-), only actual (+), shared ( ). */
function diffLines(expected: string[], actual: string[]): string {
  const n = expected.length;
  const m = actual.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) lcs[i]![j] = expected[i] === actual[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && expected[i] === actual[j]) {
      out.push(`    ${expected[i++]}`);
      j++;
    } else if (i < n && (j === m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      out.push(`  - ${expected[i++]}`);
    } else {
      out.push(`  + ${actual[j++]}`);
    }
  }
  return out.join('\n');
}
