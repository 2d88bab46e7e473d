/**
 * The offline verifier's fast path: the entry schema compiled into one regular expression per
 * entry kind that matches exactly the texts that are RFC 8785 canonical JSON *and* valid under the
 * schema, as long as every string in them is printable ASCII without escapes (which is what the
 * gateway writes: pseudonyms, digests, codes, ids). One native regular expression match replaces
 * JSON.parse, the canonical-form scan and the schema validation, the bulk of the cost per entry.
 *
 * It only has to be sound, not complete: whatever it matches the full checks accept too, and
 * whatever it does not match (another kind of string, a schema construct it does not compile, a
 * fault) goes through the full checks, which also name the fault. So every construct it cannot
 * translate exactly becomes NEVER, a pattern that matches nothing.
 */
import { isCanonicalJsonText } from './canonical-text.js';

/** Matches no text: the translation of whatever this compiler does not handle exactly. */
const NEVER = '(?!)';
/** A character a canonical JSON string holds as is: printable ASCII except `"` and `\`. */
const PLAIN = '[ !#-\\[\\]-~]';
/** Integers that canonical form prints as written, exactly: up to 15 digits. */
const NATURAL = '(?:0|[1-9][0-9]{0,14})';
const POSITIVE = '[1-9][0-9]{0,14}';
const INTEGER = '(?:0|-?[1-9][0-9]{0,14})';
const ANNOTATIONS = new Set(['description', 'title', '$comment', 'examples', 'default', 'deprecated', 'readOnly', 'writeOnly']);

type Schema = Record<string, unknown>;

export interface MatchedEntry {
  index: number;
  kind: string;
  time: string;
}

interface KindExpression {
  expression: RegExp;
  /** Members that `additionalProperties` admits can be anywhere: the key order is checked apart. */
  unordered: boolean;
  /** No object inside the entry's: every key in the text is one of the entry's own. */
  flat: boolean;
}

/** The longest entry text the fast path tries, in UTF-16 code units. */
export const FAST_PATH_MAX_LENGTH = 16_384;

export class CanonicalEntryMatcher {
  private constructor(private readonly byKind: Map<string, KindExpression>) {}

  /** Compiles the entry schema (schemas/audit-entry.schema.json: a `oneOf` of kinds told apart by `kind`). */
  static fromSchema(schema: Schema): CanonicalEntryMatcher {
    return new CanonicalEntryMatcher(new SchemaCompiler(schema).kinds());
  }

  /** The kinds that have a fast path. */
  get kinds(): string[] {
    return [...this.byKind.keys()];
  }

  /** The entry's index, kind and time if the text certainly passes every full check, else null. */
  match(text: string): MatchedEntry | null {
    // A kind's extra members may be matched several ways, so a text that fails can cost the
    // expression time quadratic in their number: a long (hostile) entry takes the full checks,
    // which are linear. Entries sluice writes are a few kilobytes.
    if (text.length > FAST_PATH_MAX_LENGTH) return null;
    const at = text.indexOf('"kind":"');
    if (at === -1) return null;
    const kind = text.slice(at + 8, text.indexOf('"', at + 8));
    const compiled = this.byKind.get(kind);
    if (!compiled || !compiled.expression.test(text)) return null;
    if (compiled.unordered && !(compiled.flat ? keysAscending(text) : isCanonicalJsonText(text))) return null;
    // In a matched text no string holds a quote and no inner object has an index or time key
    // (see kinds()), so these keys are found as text: the entry's own, once each (the index near
    // the start, the time near the end of the sorted keys).
    const index = text.indexOf('"index":') + 8;
    let end = index;
    while (end < text.length && text.charCodeAt(end) >= 0x30 && text.charCodeAt(end) <= 0x39) end++;
    const time = text.lastIndexOf('"time":"') + 8;
    return { index: Number(text.slice(index, end)), kind, time: text.slice(time, text.indexOf('"', time)) };
  }
}

/**
 * Whether the keys of a matched text with no inner objects are strictly ascending. The text is
 * known to be an object of plain strings, integers, literals and arrays of those, so walking it
 * needs no checks: the match made them.
 */
function keysAscending(text: string): boolean {
  let previous: string | null = null;
  let i = 1;
  while (text.charCodeAt(i) === 0x22) {
    const keyEnd = text.indexOf('"', i + 1);
    const key = text.slice(i + 1, keyEnd);
    if (previous !== null && !(previous < key)) return false;
    previous = key;
    i = valueEnd(text, keyEnd + 2);
    if (text.charCodeAt(i) !== 0x2c) return true;
    i++;
  }
  return true;
}

/** The index just after the value at `i` (a plain string, integer, literal, or array of those). */
function valueEnd(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === 0x22) return text.indexOf('"', i + 1) + 1;
  if (c === 0x5b) {
    if (text.charCodeAt(i + 1) === 0x5d) return i + 2;
    for (let at = i + 1; ; at++) {
      at = valueEnd(text, at);
      if (text.charCodeAt(at) === 0x5d) return at + 1;
    }
  }
  let end = i + 1;
  for (let d = text.charCodeAt(end); d !== 0x2c && d !== 0x7d && d !== 0x5d; d = text.charCodeAt(++end));
  return end;
}

/** The keywords of an entry kind's definition that the compiled expression enforces. */
const ENTRY_KEYWORDS = new Set(['type', 'properties', 'required', 'additionalProperties']);

class SchemaCompiler {
  private readonly resolving = new Set<string>();
  /** Per kind while it compiles: see KindExpression; and whether an inner object may have an index or time key. */
  private unordered = false;
  private innerObjects = false;
  private innerIndexOrTime = false;

  constructor(private readonly root: Schema) {}

  kinds(): Map<string, KindExpression> {
    const kinds = new Map<string, KindExpression>();
    const { root } = this;
    const rootKeywords = new Set(['$schema', '$id', '$defs', 'type', 'required', 'discriminator', 'oneOf']);
    if (!Object.keys(root).every((k) => rootKeywords.has(k) || ANNOTATIONS.has(k)) || root.type !== 'object') return kinds;
    if ((root.discriminator as { propertyName?: unknown } | undefined)?.propertyName !== 'kind' || !Array.isArray(root.oneOf)) return kinds;
    const rootRequired = (root.required ?? []) as string[];
    for (const branch of root.oneOf as Schema[]) {
      if (Object.keys(branch).length !== 1 || typeof branch.$ref !== 'string') continue;
      const definition = this.resolve(branch.$ref);
      const properties = definition?.properties as Record<string, Schema> | undefined;
      const kindSchema = properties?.kind;
      const required = (definition?.required ?? []) as string[];
      if (!definition || !kindSchema || typeof kindSchema.const !== 'string' || Object.keys(kindSchema).some((k) => k !== 'const' && !ANNOTATIONS.has(k))) continue;
      // Only what `object` expresses, or a condition on one member it splits into objects: a kind
      // whose definition adds anything else (a oneOf between two sets of required keys, say) takes
      // the full checks.
      const cases = this.cases(definition);
      if (cases === null) continue;
      // The discriminator's kinds are distinct constants, so at most one branch of oneOf can match.
      if (!required.includes('kind') || !['index', 'time', ...rootRequired].every((name) => required.includes(name))) continue;
      if (kinds.has(kindSchema.const)) return new Map();
      this.unordered = false;
      this.innerObjects = false;
      this.innerIndexOrTime = false;
      const expression = alternatives(cases.map((c) => this.object(c, true)));
      if (expression === NEVER || this.innerIndexOrTime) continue;
      try {
        kinds.set(kindSchema.const, { expression: new RegExp(`^${expression}$`), unordered: this.unordered, flat: !this.innerObjects });
      } catch {
        // A pattern this compiler let through but the engine refuses: that kind takes the full checks.
      }
    }
    return kinds;
  }

  /**
   * An entry definition as the plain object definitions it is the union of: itself; or, with a
   * condition `if: {required: [<member>], properties: {<member>: {const: c}}}` on a member the
   * definition requires, a `then` case whose member is c and an `else` case whose member takes
   * only those of its alternatives that exclude c, each with its branch's required and forbidden
   * (`false`) members added. null for anything else.
   */
  private cases(definition: Schema): Schema[] | null {
    const { if: condition, then: whenEqual, else: otherwise, ...plain } = definition;
    if (Object.keys(plain).some((k) => !ENTRY_KEYWORDS.has(k) && !ANNOTATIONS.has(k))) return null;
    if (condition === undefined && whenEqual === undefined && otherwise === undefined) return [plain];
    const tested = memberEquals(condition);
    const properties = (plain.properties ?? {}) as Record<string, Schema>;
    if (!tested || !((plain.required ?? []) as string[]).includes(tested.name) || !(tested.name in properties)) return null;
    const constantText = JSON.stringify(tested.value);
    const admitsConstant = (schema: Schema) => {
      try {
        return new RegExp(`^${this.schema(schema)}$`).test(constantText);
      } catch {
        // An expression the engine refuses: the kind's own expression will not compile either.
        return false;
      }
    };
    const options = this.options(properties[tested.name]!);
    // An alternative without an exact expression matches nothing here: the then case is left to the
    // full checks, and the else case keeps only alternatives known to exclude the constant.
    const equal = options.some(admitsConstant) ? withBranch(plain, tested.name, { const: tested.value }, whenEqual) : undefined;
    const other = withBranch(plain, tested.name, { anyOf: options.filter((option) => !admitsConstant(option)) }, otherwise);
    if (equal === null || other === null) return null;
    // The else case first: a failing case is matched up to its member before the next is tried,
    // and the gateway writes most entries with a listed purpose.
    return equal === undefined ? [other] : [other, equal];
  }

  /** A schema's alternatives: the branches of its anyOf, through any $ref, else the schema itself. */
  private options(schema: Schema): Schema[] {
    const keywords = Object.keys(schema).filter((k) => !ANNOTATIONS.has(k));
    if (keywords.length === 1 && typeof schema.$ref === 'string' && !this.resolving.has(schema.$ref)) {
      const target = this.resolve(schema.$ref);
      if (!target) return [schema];
      this.resolving.add(schema.$ref);
      try {
        return this.options(target);
      } finally {
        this.resolving.delete(schema.$ref);
      }
    }
    if (keywords.length === 1 && Array.isArray(schema.anyOf)) return (schema.anyOf as Schema[]).flatMap((option) => this.options(option));
    return [schema];
  }

  private resolve(ref: string): Schema | undefined {
    const match = /^#\/\$defs\/([^/~]+)$/.exec(ref);
    return match ? ((this.root.$defs as Record<string, Schema> | undefined)?.[match[1]!] ?? undefined) : undefined;
  }

  private schema(schema: Schema): string {
    const keywords = Object.keys(schema).filter((k) => !ANNOTATIONS.has(k));
    if (keywords.length === 0) return NEVER;
    if (typeof schema.$ref === 'string') {
      // $ref beside other keywords means both apply, and recursion has no regular expression.
      if (keywords.length !== 1 || this.resolving.has(schema.$ref)) return NEVER;
      const target = this.resolve(schema.$ref);
      if (!target) return NEVER;
      this.resolving.add(schema.$ref);
      try {
        return this.schema(target);
      } finally {
        this.resolving.delete(schema.$ref);
      }
    }
    if ('anyOf' in schema) {
      if (keywords.length !== 1 || !Array.isArray(schema.anyOf)) return NEVER;
      return alternatives((schema.anyOf as Schema[]).map((s) => this.schema(s)));
    }
    if ('const' in schema) return keywords.length === 1 ? literal(schema.const) : NEVER;
    if ('enum' in schema) return keywords.length === 1 && Array.isArray(schema.enum) ? alternatives(schema.enum.map(literal)) : NEVER;
    const types = typeof schema.type === 'string' ? [schema.type] : Array.isArray(schema.type) ? (schema.type as string[]) : [];
    if (types.length === 0) return NEVER;
    return alternatives(types.map((type) => this.typed(type, schema)));
  }

  private typed(type: string, schema: Schema): string {
    const keywords = Object.keys(schema).filter((k) => !ANNOTATIONS.has(k) && k !== 'type');
    const allowed = (...names: string[]) => keywords.every((k) => names.includes(k));
    switch (type) {
      case 'null':
        return 'null';
      case 'boolean':
        return '(?:true|false)';
      case 'integer':
        return allowed('minimum', 'maximum') ? integer(schema.minimum, schema.maximum) : NEVER;
      case 'string':
        return allowed('pattern', 'minLength', 'maxLength') ? string(schema) : NEVER;
      case 'array':
        return allowed('items', 'minItems', 'maxItems') ? this.array(schema) : NEVER;
      case 'object':
        return allowed('properties', 'required', 'additionalProperties') ? this.object(schema, false) : NEVER;
      default:
        // Numbers other than integers have many canonical spellings to get exactly right: full checks.
        return NEVER;
    }
  }

  private array(schema: Schema): string {
    if (typeof schema.items !== 'object' || schema.items === null) return NEVER;
    const item = this.schema(schema.items as Schema);
    const min = schema.minItems === undefined ? 0 : schema.minItems;
    const max = schema.maxItems;
    if (!isCount(min) || (max !== undefined && (!isCount(max) || max < min))) return NEVER;
    if (max === 0 || item === NEVER) return min === 0 ? '\\[\\]' : NEVER;
    const more = `(?:,${item}){${Math.max(min - 1, 0)},${max === undefined ? '' : max - 1}}`;
    return min === 0 ? `\\[(?:${item}${more})?\\]` : `\\[${item}${more}\\]`;
  }

  /**
   * Members in canonical order (keys sorted by UTF-16 code units), each optional one skippable.
   * Other members that `additionalProperties` admits may come anywhere between them: their order
   * among the named ones is then checked apart (KindExpression.unordered).
   */
  private object(schema: Schema, entry: boolean): string {
    const others = schema.additionalProperties;
    if (others !== false && (typeof others !== 'object' || others === null)) return NEVER;
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    const required = new Set((schema.required ?? []) as string[]);
    const names = Object.keys(properties).sort();
    if ([...required].some((name) => !(name in properties)) || names.some((name) => !new RegExp(`^${PLAIN}*$`).test(name))) return NEVER;
    const otherValue = others === false ? NEVER : this.schema(others as Schema);
    if (!entry) {
      this.innerObjects = true;
      if ('index' in properties || 'time' in properties || otherValue !== NEVER) this.innerIndexOrTime = true;
    }
    // Any other key, never one of the named ones (whose values have schemas of their own).
    const other = otherValue === NEVER ? null : `"${names.length > 0 ? `(?!(?:${names.map(escapeRegExp).join('|')})")` : ''}${PLAIN}*":${otherValue}`;
    if (other !== null) this.unordered = true;
    // A member whose schema is `false` can never be present: it has no expression.
    const values = names.map((name) => ((properties[name] as unknown) === false ? NEVER : this.schema(properties[name]!)));
    if (names.some((name, i) => required.has(name) && values[i] === NEVER)) return NEVER;
    const members = names.map((name, i) => ({ text: `"${escapeRegExp(name)}":${values[i]!}`, required: required.has(name) }));
    const more = other === null ? '' : `(?:,${other})*`;
    // rest(i): members i.. each after its comma; first(i): the same with no comma before the first one present.
    const rest = (i: number): string => more + members.slice(i).map((m) => (m.required ? `,${m.text}` : `(?:,${m.text})?`) + more).join('');
    const first = (i: number): string => {
      if (i === members.length) return other === null ? '' : `(?:${other}${more})?`;
      const member = members[i]!;
      const options = [`${member.text}${rest(i + 1)}`];
      if (other !== null) options.push(`${other}${rest(i)}`);
      if (!member.required) options.push(first(i + 1));
      return options.length === 1 ? options[0]! : `(?:${options.join('|')})`;
    };
    return `\\{${first(0)}\\}`;
  }
}

/** The member and constant of a condition `{required?: [<member>], properties: {<member>: {const: <constant>}}}`, if it is one. */
function memberEquals(condition: unknown): { name: string; value: unknown } | null {
  if (typeof condition !== 'object' || condition === null) return null;
  const { properties, required, ...rest } = condition as Schema;
  if (Object.keys(rest).some((k) => !ANNOTATIONS.has(k)) || typeof properties !== 'object' || properties === null) return null;
  const members = Object.entries(properties as Record<string, Schema>);
  if (members.length !== 1) return null;
  const [name, schema] = members[0]!;
  // Requiring the member in the condition changes nothing where the definition requires it too.
  if (required !== undefined && !(Array.isArray(required) && required.every((r) => r === name))) return null;
  if (typeof schema !== 'object' || schema === null || !('const' in schema) || Object.keys(schema).some((k) => k !== 'const' && !ANNOTATIONS.has(k))) return null;
  return { name, value: schema.const };
}

/**
 * The plain definition with one member's schema replaced (narrowed: the caller makes sure the new
 * one admits only what the old one does) and a `then`/`else` branch merged in: its required
 * members, and its members whose schema is `false`. undefined branch: nothing to merge; null: a
 * branch with anything else.
 */
function withBranch(plain: Schema, member: string, narrowed: Schema, branch: unknown): Schema | null {
  const { required = [], properties = {}, ...rest } = (branch ?? {}) as Schema;
  if ((branch !== undefined && (typeof branch !== 'object' || branch === null)) || Object.keys(rest).some((k) => !ANNOTATIONS.has(k)) || !Array.isArray(required)) return null;
  if (typeof properties !== 'object' || properties === null || Object.values(properties).some((schema) => schema !== false)) return null;
  return {
    ...plain,
    properties: { ...(plain.properties as Record<string, Schema>), [member]: narrowed, ...(properties as Record<string, false>) },
    required: [...((plain.required ?? []) as string[]), ...(required as string[])],
  };
}

function alternatives(options: string[]): string {
  const possible = options.filter((o) => o !== NEVER);
  if (possible.length === 0) return NEVER;
  return possible.length === 1 ? possible[0]! : `(?:${possible.join('|')})`;
}

/** A constant's canonical text, if it is made of plain characters only. */
function literal(value: unknown): string {
  if (value !== null && typeof value === 'object') return NEVER;
  const text = JSON.stringify(value);
  if (typeof value === 'number' && !(Number.isSafeInteger(value) && Math.abs(value) < 1e15)) return NEVER;
  return typeof text === 'string' && /^[ -~]*$/.test(text) && !/\\/.test(text) ? escapeRegExp(text) : NEVER;
}

function integer(minimum: unknown, maximum: unknown): string {
  // Every integer written by NATURAL/INTEGER is below 10^15: a maximum at or above that bounds nothing here.
  if (maximum !== undefined && !(typeof maximum === 'number' && maximum >= 1e15 - 1)) return NEVER;
  if (minimum === undefined) return INTEGER;
  if (minimum === 0) return NATURAL;
  if (minimum === 1) return POSITIVE;
  return NEVER;
}

function string(schema: Schema): string {
  const min = schema.minLength ?? 0;
  const max = schema.maxLength;
  if (!isCount(min) || (max !== undefined && (!isCount(max) || max < min))) return NEVER;
  const length = `{${min},${max ?? ''}}`;
  if (schema.pattern === undefined) return `"${PLAIN}${length}"`;
  const pattern = typeof schema.pattern === 'string' ? plainPattern(schema.pattern) : null;
  if (pattern === null) return NEVER;
  // The pattern matches plain characters only, so it ends exactly at the closing quote; the
  // lookahead bounds the length (plain characters are one UTF-16 unit each, as JSON Schema counts).
  return `"${length === '{0,}' ? '' : `(?=${PLAIN}${length}")`}(?:${pattern})"`;
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}

/** Escapes that stand for plain characters in a non-unicode regular expression. */
const PLAIN_ESCAPES = new Set(['.', '-', '[', ']', '(', ')', '/', '+', '*', '?', '{', '}', '|', '^', '$', 'd', 'w']);

/**
 * A schema pattern of the form ^...$ as a sub-expression, if it can only ever match plain
 * characters (so never a quote, a backslash, a control or non-ASCII character); else null. Its
 * groups become non-capturing (a pattern has no back-references): matching need not record them.
 */
export function plainPattern(pattern: string): string | null {
  if (!pattern.startsWith('^') || !pattern.endsWith('$') || pattern.endsWith('\\$')) return null;
  const body = pattern.slice(1, -1);
  let plain = '';
  let copied = 0;
  let depth = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '\\') {
      if (!PLAIN_ESCAPES.has(body[++i]!)) return null;
    } else if (c === '[') {
      const end = classEnd(body, i);
      if (end === -1) return null;
      i = end;
    } else if (c === '(') {
      // Plain groups only: no lookaround, no named or non-capturing variants but (?:.
      if (body[i + 1] === '?' && body[i + 2] !== ':') return null;
      if (body[i + 1] === '?') {
        i += 2;
      } else {
        plain += `${body.slice(copied, i + 1)}?:`;
        copied = i + 1;
      }
      depth++;
    } else if (c === ')') {
      if (--depth < 0) return null;
    } else if (c === '|') {
      // ^a|b$ anchors each side on its own: not the same once the anchors are taken off.
      if (depth === 0) return null;
    } else if (c === '{') {
      const end = body.indexOf('}', i);
      if (end === -1 || !/^\{[0-9]+(,[0-9]*)?\}$/.test(body.slice(i, end + 1))) return null;
      i = end;
    } else if (c === '*' || c === '+' || c === '?') {
      continue;
    } else if (c === '.' || c === '^' || c === '$' || c === '"' || c === ']' || c === '}' || c < ' ' || c > '~') {
      return null;
    }
  }
  return depth === 0 ? plain + body.slice(copied) : null;
}

/** The index of the `]` closing the character class at `start`, if every member is plain; else -1. */
function classEnd(body: string, start: number): number {
  let i = start + 1;
  if (body[i] === '^') return -1;
  for (; i < body.length && body[i] !== ']'; i++) {
    let code: number;
    if (body[i] === '\\') {
      const escaped = body[++i]!;
      if (escaped === 'd' || escaped === 'w') continue;
      if (!PLAIN_ESCAPES.has(escaped)) return -1;
      code = escaped.charCodeAt(0);
    } else {
      code = body.charCodeAt(i);
    }
    if (body[i + 1] === '-' && body[i + 2] !== undefined && body[i + 2] !== ']') {
      const to = body[i + 2] === '\\' ? -1 : body.charCodeAt(i + 2);
      if (to === -1 || to < code || !isPlainRange(code, to)) return -1;
      i += 2;
      continue;
    }
    if (!isPlainRange(code, code)) return -1;
  }
  return i < body.length ? i : -1;
}

function isPlainRange(from: number, to: number): boolean {
  return from >= 0x20 && to <= 0x7e && !(from <= 0x22 && to >= 0x22) && !(from <= 0x5c && to >= 0x5c);
}
