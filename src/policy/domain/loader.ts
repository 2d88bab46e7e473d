import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { schemasDir } from './data-categories.js';
import type { CompiledDelivery, CompiledField, CompiledFreeText, CompiledPolicy, CompiledTemplate, PolicyDocument, TemplateLine, TemplateRule, Transform, TransformSpec } from './policy.js';
import { RECOGNISER_IDS, type RecogniserId } from './recognisers/index.js';
import { MINIMUM_RETENTION_DAYS, retentionMs } from './retention.js';
import { readYamlSource, schemaErrorPath, simplifySchemaErrors, type YamlPath } from './yaml-source.js';

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
  /**
   * Every purpose the policies name: each one's own and those their consent rules ask for. Codes
   * reviewed with the policy files, so the audit log may hold them in clear (no other purpose).
   */
  purposes: ReadonlySet<string>;
  select(purpose: string, source: string, destination: string): CompiledPolicy | undefined;
}

export const POLICY_FILE_SUFFIX = '.policy.yaml';

export function defaultSchemaPath(): string {
  return join(schemasDir(), 'policy.schema.json');
}

export interface PolicySourceFile {
  name: string;
  bytes: Buffer;
}

/** Every `*.policy.yaml` of a folder, sorted by name. */
export function readPolicyFiles(dir: string): PolicySourceFile[] {
  const folder = resolve(dir);
  if (!existsSync(folder)) throw new PolicyLoadError([{ file: folder, line: 0, column: 0, message: 'the policies folder does not exist' }]);
  // Policies are read as a whole folder (one policy may not be checked alone: purposes and names must not clash).
  if (!statSync(folder).isDirectory()) throw new PolicyLoadError([{ file: folder, line: 0, column: 0, message: 'a file, not the policies folder: name the folder that holds it' }]);
  const problems: PolicyProblem[] = [];
  const files: PolicySourceFile[] = [];
  for (const name of readdirSync(folder).filter((f) => f.endsWith(POLICY_FILE_SUFFIX)).sort()) {
    try {
      files.push({ name, bytes: readFileSync(join(folder, name)) });
    } catch (error) {
      // A folder of that name, a link to nothing (an editor's lock file), a file it may not read.
      const code = (error as { code?: string }).code;
      problems.push({ file: name, line: 0, column: 0, message: `cannot be read: ${UNREADABLE[code ?? ''] ?? code ?? (error as Error).message}` });
    }
  }
  if (problems.length > 0) throw new PolicyLoadError(problems);
  return files;
}

const UNREADABLE: Record<string, string> = { EISDIR: 'a folder, not a file', ENOENT: 'a link to nothing', EACCES: 'permission denied' };

/**
 * The bytes the bundle hash is taken over: CRLF line ends read as LF, so a checkout that converts
 * line ends (core.autocrlf) names the same bundle as every other. A file with none is its bytes.
 */
function hashedBytes(bytes: Buffer): Buffer {
  return bytes.includes('\r\n') ? Buffer.from(bytes.toString('latin1').replace(/\r\n/g, '\n'), 'latin1') : bytes;
}

/**
 * Loads, validates and compiles every `*.policy.yaml` of a folder. Throws PolicyLoadError naming
 * every problem with its file and line; a bundle is returned only if all of it is valid.
 */
export function loadPolicyBundle(dir: string, schemaPath = defaultSchemaPath()): PolicyBundle {
  const files = readPolicyFiles(dir);
  if (files.length === 0) throw new PolicyLoadError([{ file: resolve(dir), line: 0, column: 0, message: `no *${POLICY_FILE_SUFFIX} files` }]);
  return compilePolicyBundle(files, schemaPath);
}

/** The same from files in memory (a git revision's policies for `sluice policy diff`). */
export function compilePolicyBundle(files: PolicySourceFile[], schemaPath = defaultSchemaPath()): PolicyBundle {
  const validate = new Ajv2020({ allErrors: true, strict: true, discriminator: true }).compile(JSON.parse(readFileSync(schemaPath, 'utf8')));
  const problems: PolicyProblem[] = [];
  const policies: CompiledPolicy[] = [];
  const bundleHash = createHash('sha256');

  for (const { name: file, bytes: read } of [...files].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))) {
    const bytes = hashedBytes(read);
    bundleHash.update(`${Buffer.byteLength(file)}:${file}${bytes.length}:`).update(bytes);
    const source = readYamlSource(bytes.toString('utf8'));
    if ('problems' in source) {
      for (const problem of source.problems) problems.push({ file, ...problem });
      continue;
    }
    const { value } = source;
    const at = (path: YamlPath, message: string) => problems.push({ file, ...source.positionOf(path), message });
    if (!validate(value)) {
      for (const error of simplifySchemaErrors(validate.errors ?? [])) at(schemaErrorPath(error), schemaErrorMessage(error, value));
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
    purposes: new Set(policies.flatMap((p) => [p.purpose, ...[p.recipientConsent, p.author?.consent, p.mentioned?.consent].flatMap((rule) => (rule ? [rule.purpose] : []))])),
    select: (purpose, source, destination) => byKey.get(`${purpose}|${source}|${destination}`),
  };
}

type Report = (path: (string | number)[], message: string) => void;

const DEFAULT_MEDIA_BYTES = 5 * 1024 * 1024;

/** Semantic checks the schema cannot express (the same ones `sluice policy lint` reports), then the compiled form. */
function compile(doc: PolicyDocument, file: string, fileHash: string, at: Report): CompiledPolicy | undefined {
  let valid = true;
  const fail: Report = (path, message) => {
    valid = false;
    at(path, message);
  };
  if (doc.audit?.retention && retentionMs(doc.audit.retention) < MINIMUM_RETENTION_DAYS * 86_400_000) {
    fail(
      ['audit', 'retention'],
      `audit.retention must be at least ${MINIMUM_RETENTION_DAYS} days (P${MINIMUM_RETENTION_DAYS}D or P1M): a subject access request may take a month to answer (GDPR Art. 12(3)), and it needs the keys a shorter retention destroys`,
    );
  }
  if (doc.lawfulBasis === 'consent' && !doc.recipients.consent) {
    fail(['lawfulBasis'], 'lawful basis consent needs a consent rule: recipients.consent names the purpose each recipient must have consented to');
  }

  const fields = doc.fields.map((f) => ({ ...f, transform: compileTransform(f.transform ?? 'none') }));
  fields.forEach((field, i) => {
    fields.slice(0, i).forEach((other) => {
      const dropped = (field.transform.kind === 'drop') !== (other.transform.kind === 'drop');
      if (field.path === other.path) {
        fail(['fields', i, 'path'], dropped ? `field ${field.path} is both allowed and dropped` : `field ${field.path} is listed twice`);
      } else if (field.path.startsWith(`${other.path}.`) || other.path.startsWith(`${field.path}.`)) {
        fail(['fields', i, 'path'], dropped ? `field ${field.path} is both allowed and dropped (through ${other.path})` : `field ${field.path} overlaps ${other.path}`);
      }
    });
    if (field.subject === 'author' && !doc.subjects?.author) fail(['fields', i, 'subject'], 'subject author has no rule under subjects.author');
    if (field.transform.kind === 'redact-pii' && !doc.freeText) fail(['fields', i, 'transform'], 'redact-pii needs a freeText section naming the recognisers');
  });
  const crossing = fields.filter((f) => f.transform.kind !== 'drop');

  // Rules that can never apply are mistakes a reviewer would otherwise have to spot.
  if (doc.subjects?.author && !crossing.some((f) => f.subject === 'author')) {
    fail(['subjects', 'author'], 'unreachable rule: subjects.author applies to no field (no allowed field has subject: author)');
  }
  if (doc.subjects?.mentioned && !crossing.some((f) => f.path === 'message')) {
    fail(['subjects', 'mentioned'], 'unreachable rule: subjects.mentioned applies to the message, which does not cross');
  }
  if (doc.freeText && !crossing.some((f) => f.transform.kind === 'redact-pii')) {
    fail(['freeText'], 'unreachable rule: freeText applies to no field (no field has transform: redact-pii)');
  }
  for (const recogniser of Object.keys(doc.freeText?.actions ?? {}) as RecogniserId[]) {
    if (!doc.freeText!.recognisers.includes(recogniser)) fail(['freeText', 'actions', recogniser], `unreachable rule: ${recogniser} is not among freeText.recognisers`);
  }
  const mediaAllowed = Boolean(doc.media?.photos?.allow || doc.media?.videos?.allow);
  if (mediaAllowed && doc.delivery.type === 'template') fail(['delivery', 'type'], 'a template message cannot carry the photos or videos that media allows: deliver as text');

  const allowed = new Set(crossing.map((f) => f.path));
  const placeholders = (template: string, path: (string | number)[]) => {
    const lines = parseTemplate(template);
    for (const line of lines) {
      for (const part of line) {
        if ('field' in part && !allowed.has(part.field)) {
          fail(path, fields.some((f) => f.path === part.field) ? `unreachable rule: template placeholder {${part.field}} names a dropped field` : `template placeholder {${part.field}} is not an allow-listed field`);
        }
      }
    }
    return lines;
  };
  const compileTemplate = (template: TemplateRule, path: (string | number)[]): CompiledTemplate => ({
    name: template.name,
    language: template.language,
    parameters: template.parameters.map((p, i) => {
      const lines = placeholders(p.text, [...path, 'parameters', i, 'text']);
      if (lines.length > 1) fail([...path, 'parameters', i, 'text'], 'a template parameter is one line');
      return { text: lines[0]!, fallback: p.fallback };
    }),
  });
  let delivery: CompiledDelivery;
  if (doc.delivery.type === 'text') {
    const body = placeholders(doc.delivery.template, ['delivery', 'template']);
    const outsideWindow = doc.delivery.outsideWindow ? compileTemplate(doc.delivery.outsideWindow, ['delivery', 'outsideWindow']) : undefined;
    delivery = { type: 'text', body, ...(outsideWindow ? { outsideWindow } : {}) };
  } else {
    delivery = { type: 'template', ...compileTemplate(doc.delivery, ['delivery']) };
  }
  if (!valid) return undefined;

  const freeTextAction = doc.freeText?.action ?? 'mask';
  return {
    name: doc.name,
    ...(doc.description ? { description: doc.description } : {}),
    purpose: doc.purpose,
    lawfulBasis: doc.lawfulBasis,
    source: doc.source,
    destination: doc.destination,
    file,
    fileHash,
    ...(doc.recipients.consent ? { recipientConsent: doc.recipients.consent } : {}),
    ...(doc.subjects?.author ? { author: doc.subjects.author } : {}),
    ...(doc.subjects?.mentioned ? { mentioned: doc.subjects.mentioned } : {}),
    fields: fields.map(
      (f): CompiledField => ({
        path: f.path,
        segments: f.path.split('.'),
        category: f.category,
        transform: f.transform,
        ...(f.subject ? { subject: f.subject } : {}),
        ...(f.reason ? { reason: f.reason } : {}),
      }),
    ),
    freeText: {
      recognisers: doc.freeText?.recognisers ?? [],
      actionOf: Object.fromEntries(RECOGNISER_IDS.map((id: RecogniserId) => [id, doc.freeText?.actions?.[id] ?? freeTextAction])) as CompiledFreeText['actionOf'],
    },
    media: {
      photos: {
        allow: doc.media?.photos?.allow ?? false,
        category: doc.media?.photos?.category ?? 'user.content',
        types: doc.media?.photos?.types ?? ['jpeg', 'png', 'heic', 'webp'],
        maxPixels: doc.media?.photos?.maxPixels ?? 40_000_000,
        maxDimension: doc.media?.photos?.maxDimension ?? 10_000,
      },
      videos: {
        allow: doc.media?.videos?.allow ?? false,
        category: doc.media?.videos?.category ?? 'user.content',
        types: doc.media?.videos?.types ?? ['mp4'],
      },
    },
    limits: {
      recipientsPerShare: doc.limits?.recipientsPerShare ?? 50,
      messageLength: doc.limits?.messageLength ?? 4096,
      mediaBytes: doc.limits?.mediaBytes ?? DEFAULT_MEDIA_BYTES,
    },
    delivery,
    ...(doc.audit?.retention ? { retention: doc.audit.retention } : {}),
  };
}

function compileTransform(spec: TransformSpec): Transform {
  if (typeof spec === 'string') return { kind: spec };
  if ('mask' in spec) return { kind: 'mask', keepFirst: spec.mask.keepFirst ?? 0, keepLast: spec.mask.keepLast ?? 0 };
  if ('truncate' in spec) return { kind: 'truncate', length: spec.truncate.length };
  return { kind: 'generalise', to: spec.generalise.to };
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

function schemaErrorMessage(error: ErrorObject, document: unknown): string {
  const where = error.instancePath ? error.instancePath.slice(1).replaceAll('/', '.') : '(policy)';
  if (error.keyword === 'oneOf' || error.keyword === 'anyOf') {
    const value = error.instancePath.split('/').slice(1).reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), document);
    if (/category$/.test(error.instancePath)) return `unknown data category ${JSON.stringify(value)} (a fideslang key or org.<organisation>.<name>)`;
    if (/transform$/.test(error.instancePath)) return `${where} must be none, drop, hash, redact-pii, {mask: {keepFirst, keepLast}}, {truncate: {length}} or {generalise: {to: day|month}}`;
    return `${where} matches none of its allowed forms`;
  }
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
