import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { isKnownCategory } from './data-categories.js';
import type { CompiledField, CompiledPolicy, PolicyDocument, TemplateLine } from './policy.js';

export interface PolicyProblem {
  file: string;
  line: number;
  column: number;
  message: string;
}

/** Every problem of every policy file, each as file:line:column. */
export class PolicyLoadError extends Error {
  constructor(readonly problems: PolicyProblem[]) {
    super(`Invalid policies:\n${problems.map((p) => `  ${p.file}:${p.line}:${p.column} ${p.message}`).join('\n')}`);
    this.name = 'PolicyLoadError';
  }
}

export interface PolicyBundle {
  /** `sha256:` + hex over every policy file's name and bytes: names the exact rules of a decision. */
  hash: string;
  policies: CompiledPolicy[];
  select(purpose: string, source: string, destination: string): CompiledPolicy | undefined;
}

export const POLICY_FILE_SUFFIX = '.policy.yaml';

/** The repository's schema, found from this module whether it runs from src/ or from dist/src/. */
export function defaultSchemaPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'schemas', 'policy.schema.json');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('schemas/policy.schema.json not found above the policy module');
    dir = parent;
  }
}

/**
 * Loads, validates and compiles every `*.policy.yaml` of a folder. Throws PolicyLoadError naming
 * every problem with its file and line; a bundle is returned only if all of it is valid.
 */
export function loadPolicyBundle(dir: string, schemaPath = defaultSchemaPath()): PolicyBundle {
  const folder = resolve(dir);
  if (!existsSync(folder)) throw new PolicyLoadError([{ file: folder, line: 0, column: 0, message: 'the policies folder does not exist' }]);
  const files = readdirSync(folder).filter((f) => f.endsWith(POLICY_FILE_SUFFIX)).sort();
  const validate = new Ajv2020({ allErrors: true, strict: true }).compile(JSON.parse(readFileSync(schemaPath, 'utf8')));

  const problems: PolicyProblem[] = [];
  const policies: CompiledPolicy[] = [];
  const bundleHash = createHash('sha256');
  if (files.length === 0) problems.push({ file: folder, line: 0, column: 0, message: `no *${POLICY_FILE_SUFFIX} files` });

  for (const file of files) {
    const bytes = readFileSync(join(folder, file));
    bundleHash.update(`${Buffer.byteLength(file)}:${file}${bytes.length}:`).update(bytes);
    const lineCounter = new LineCounter();
    const doc = parseDocument(bytes.toString('utf8'), { lineCounter, uniqueKeys: true, prettyErrors: false });
    const at = (path: (string | number)[], message: string) => problems.push({ file, ...position(doc, lineCounter, path), message });
    if (doc.errors.length > 0) {
      for (const error of doc.errors) {
        const { line, col } = lineCounter.linePos(error.pos[0]);
        problems.push({ file, line, column: col, message: `YAML: ${error.message.split('\n')[0]}` });
      }
      continue;
    }
    const value = doc.toJS() as unknown;
    if (!validate(value)) {
      for (const error of validate.errors ?? []) at(schemaErrorPath(error), schemaErrorMessage(error));
      continue;
    }
    const policy = compile(value as PolicyDocument, file, createHash('sha256').update(bytes).digest('hex'), at);
    if (policy) policies.push(policy);
  }

  const seen = new Map<string, string>();
  for (const policy of policies) {
    const key = `${policy.purpose}|${policy.source}|${policy.destination}`;
    const other = seen.get(key);
    if (other) {
      problems.push({ file: policy.file, line: 1, column: 1, message: `purpose ${policy.purpose} from ${policy.source} to ${policy.destination} is already governed by ${other}: the choice would be ambiguous` });
    }
    seen.set(key, policy.file);
  }
  const names = new Map<string, string>();
  for (const policy of policies) {
    if (names.has(policy.name)) problems.push({ file: policy.file, line: 1, column: 1, message: `policy name ${policy.name} is also used by ${names.get(policy.name)}` });
    names.set(policy.name, policy.file);
  }
  if (problems.length > 0) throw new PolicyLoadError(problems);

  const byKey = new Map(policies.map((p) => [`${p.purpose}|${p.source}|${p.destination}`, p]));
  return {
    hash: `sha256:${bundleHash.digest('hex')}`,
    policies,
    select: (purpose, source, destination) => byKey.get(`${purpose}|${source}|${destination}`),
  };
}

type Report = (path: (string | number)[], message: string) => void;

/** Semantic checks the schema cannot express, then the compiled form. */
function compile(doc: PolicyDocument, file: string, fileHash: string, at: Report): CompiledPolicy | undefined {
  let valid = true;
  const fail: Report = (path, message) => {
    valid = false;
    at(path, message);
  };
  const paths = new Set<string>();
  doc.fields.forEach((field, i) => {
    if (!isKnownCategory(field.category)) fail(['fields', i, 'category'], `unknown data category ${field.category} (a fideslang key or org.<organisation>.<name>)`);
    if (paths.has(field.path)) fail(['fields', i, 'path'], `field ${field.path} is listed twice`);
    for (const other of paths) {
      if (field.path.startsWith(`${other}.`) || other.startsWith(`${field.path}.`)) fail(['fields', i, 'path'], `field ${field.path} overlaps ${other}`);
    }
    paths.add(field.path);
    if (field.subject === 'author' && !doc.subjects?.author) fail(['fields', i, 'subject'], 'subject author has no rule under subjects.author');
  });

  const template = parseTemplate(doc.delivery.template);
  template.forEach((line) =>
    line.forEach((part) => {
      if ('field' in part && !paths.has(part.field)) fail(['delivery', 'template'], `template placeholder {${part.field}} is not an allow-listed field`);
    }),
  );
  if (!valid) return undefined;

  const fields: CompiledField[] = doc.fields.map((f) => ({
    path: f.path,
    segments: f.path.split('.'),
    category: f.category,
    transform: f.transform ?? 'none',
    ...(f.subject ? { subject: f.subject } : {}),
  }));
  return {
    name: doc.name,
    purpose: doc.purpose,
    lawfulBasis: doc.lawfulBasis,
    source: doc.source,
    destination: doc.destination,
    file,
    fileHash,
    recipientConsent: doc.recipients.consent,
    ...(doc.subjects?.author ? { author: doc.subjects.author } : {}),
    ...(doc.subjects?.mentioned ? { mentioned: doc.subjects.mentioned } : {}),
    fields,
    limits: { recipientsPerShare: doc.limits?.recipientsPerShare ?? 50, messageLength: doc.limits?.messageLength ?? 4096 },
    template,
    ...(doc.audit?.retention ? { retention: doc.audit.retention } : {}),
  };
}

export function parseTemplate(template: string): TemplateLine[] {
  return template.split('\n').map((line) => {
    const parts: TemplateLine = [];
    let rest = line;
    for (let match = /\{([a-z0-9_.]+)\}/.exec(rest); match; match = /\{([a-z0-9_.]+)\}/.exec(rest)) {
      if (match.index > 0) parts.push({ text: rest.slice(0, match.index) });
      parts.push({ field: match[1]! });
      rest = rest.slice(match.index + match[0].length);
    }
    if (rest) parts.push({ text: rest });
    return parts;
  });
}

function schemaErrorPath(error: ErrorObject): (string | number)[] {
  const path = error.instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'))
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  if (error.keyword === 'additionalProperties') path.push(String(error.params.additionalProperty));
  return path;
}

function schemaErrorMessage(error: ErrorObject): string {
  const where = error.instancePath ? error.instancePath.slice(1).replaceAll('/', '.') : '(policy)';
  switch (error.keyword) {
    case 'additionalProperties':
      return `${where === '(policy)' ? '' : `${where}.`}${String(error.params.additionalProperty)} is not a policy setting`;
    case 'enum':
      return `${where} must be one of ${(error.params.allowedValues as unknown[]).join(', ')}`;
    case 'const':
      return `${where} must be ${String(error.params.allowedValue)}`;
    case 'required':
      return `${where} is missing ${String(error.params.missingProperty)}`;
    default:
      return `${where} ${error.message ?? 'is not valid'}`;
  }
}

/** Line and column of the YAML node at a path, else of its nearest existing parent. */
function position(doc: Document, lineCounter: LineCounter, path: (string | number)[]): { line: number; column: number } {
  for (let depth = path.length; depth >= 0; depth--) {
    const sub = path.slice(0, depth);
    const parent = sub.length > 1 ? doc.getIn(sub.slice(0, -1), true) : doc.contents;
    // For a key, point at the key itself (it exists even when its value is empty).
    if (sub.length > 0 && isMap(parent)) {
      const pair = parent.items.find((item) => isScalar(item.key) && item.key.value === sub[sub.length - 1]);
      const range = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
      if (range) return toPosition(lineCounter, range[0]);
    }
    const node = sub.length === 0 ? doc.contents : doc.getIn(sub, true);
    const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
    if (range) return toPosition(lineCounter, range[0]);
  }
  return { line: 1, column: 1 };
}

function toPosition(lineCounter: LineCounter, offset: number): { line: number; column: number } {
  const { line, col } = lineCounter.linePos(offset);
  return { line, column: col };
}
