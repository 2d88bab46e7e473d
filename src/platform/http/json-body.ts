import { UnsupportedMediaTypeException } from '@nestjs/common';
import type { FastifyInstance } from 'fastify';
import { ROUTE_ACCESS } from '../auth/auth.decorators.js';
import { type FieldProblem, InvalidRequestException, MAX_PROBLEMS_NAMED } from './problem.js';
import { bodyStream, contentLengthOf, readBodyWithin } from './read-body.js';

/** Deeper than this is no request sluice understands; refusing it bounds every recursive walk after. */
export const MAX_JSON_DEPTH = 64;
/** A high surrogate not followed by a low one, or a low one not preceded by a high one (code units: no u flag). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * How wide a request sluice takes. class-transformer copies every object it validates with a
 * duplicate-key filter quadratic in the object's keys (100,000 keys block the event loop for
 * seconds), and each unknown field of a post becomes a `dropped` line of the append-only audit
 * log: both need a bound before they run. No request of sluice's comes near these (a share has
 * at most 256 recipients; a Workplace post has a few dozen fields).
 */
export interface JsonShapeLimits {
  /** Members of one object. */
  keysPerObject: number;
  /** Items of one array. */
  itemsPerArray: number;
  /** Members and items of the whole body, together. */
  valuesInBody: number;
}

export const REQUEST_SHAPE_LIMITS: JsonShapeLimits = { keysPerObject: 1000, itemsPerArray: 1000, valuesInBody: 20_000 };
const UNLIMITED: JsonShapeLimits = { keysPerObject: Infinity, itemsPerArray: Infinity, valuesInBody: Infinity };

/**
 * What in a parsed JSON body sluice cannot take, as problems with their paths: numbers beyond the
 * range of a double (1e400 parses to Infinity), strings with lone surrogates (they have no UTF-8
 * form), in keys as in values, and nesting deeper than MAX_JSON_DEPTH. Such a body is not I-JSON
 * (RFC 7493), which the audit log's canonical form (RFC 8785) requires of everything it hashes.
 * With `limits`, also objects, arrays or a body wider than those (JsonShapeLimits); what is
 * inside a container too wide is not looked at. The walk recurses at most MAX_JSON_DEPTH levels,
 * however deep the body, and builds a path only for a problem it reports: this runs on every
 * request with a body.
 */
export function jsonBodyProblems(body: unknown, limits: JsonShapeLimits = UNLIMITED): FieldProblem[] {
  const problems: FieldProblem[] = [];
  let more = 0;
  let values = 0;
  // The names from the body down to the value being looked at.
  const names: string[] = [];
  const report = (message: string) => {
    if (problems.length >= MAX_PROBLEMS_NAMED) {
      more++;
      return;
    }
    let path = '';
    for (const name of names) path = path ? `${path}.${name}` : name;
    problems.push({ path: path || '(body)', message });
  };
  const visit = (value: unknown, depth: number) => {
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) report('must be a number within the range of a double (about ±1.8e308)');
    } else if (typeof value === 'string') {
      if (LONE_SURROGATE.test(value)) report('must not contain lone UTF-16 surrogates (\\ud800-\\udfff without their pair)');
    } else if (value !== null && typeof value === 'object') {
      if (depth >= MAX_JSON_DEPTH) {
        report(`must not nest deeper than ${MAX_JSON_DEPTH} levels`);
        return;
      }
      const keys = Array.isArray(value) ? undefined : Object.keys(value);
      const width = keys ? keys.length : (value as unknown[]).length;
      if (keys ? width > limits.keysPerObject : width > limits.itemsPerArray) {
        report(keys ? `must not have more than ${limits.keysPerObject} members` : `must not have more than ${limits.itemsPerArray} items`);
        return;
      }
      values += width;
      if (values > limits.valuesInBody) return;
      if (!keys) {
        const items = value as unknown[];
        for (let i = 0; i < items.length; i++) {
          names.push(String(i));
          visit(items[i], depth + 1);
          names.pop();
        }
      } else {
        for (const name of keys) {
          names.push(name);
          if (LONE_SURROGATE.test(name)) report('the name must not contain lone UTF-16 surrogates');
          visit((value as Record<string, unknown>)[name], depth + 1);
          names.pop();
        }
      }
    }
  };
  visit(body, 0);
  if (values > limits.valuesInBody) return [{ path: '(body)', message: `must not hold more than ${limits.valuesInBody} members and array items in all` }];
  if (more > 0) problems.push({ path: '(body)', message: `and ${more} more problem(s) like those above` });
  return problems;
}

/**
 * Refuses, with 400 naming each problem, a parsed body that jsonBodyProblems finds fault with;
 * but on a signed route, whose handler checks the signature first (a 401 comes before a 400) and
 * then the body.
 */
export function refuseUnrepresentableJson(fastify: FastifyInstance): void {
  fastify.addHook('preParsing', async (request, reply, payload) => {
    const config = request.routeOptions.config as unknown as Record<string, unknown> | undefined;
    const length = contentLengthOf(request.headers);
    // A small body parses fast however deep it is (the walk below then refuses it); a large one, or
    // one of unknown length, is looked at before JSON.parse, which takes a third of a second for
    // 3 MiB of `[[[…`. Signed routes are parsed only once their bytes' signature holds.
    if (config?.[ROUTE_ACCESS] === 'signed' || length === undefined || (length !== 'chunked' && length <= DEPTH_CHECKED_BEFORE_PARSING_FROM)) return payload;
    const body = await readBodyWithin(payload, request.routeOptions.bodyLimit ?? Infinity, length === 'chunked' ? NaN : length, reply);
    if (nestsDeeperThan(body, MAX_JSON_DEPTH)) throw new InvalidRequestException([{ path: '(body)', message: `must not nest deeper than ${MAX_JSON_DEPTH} levels` }]);
    return bodyStream(body);
  });
  fastify.addHook('preValidation', (request, _reply, done) => {
    const signed = (request.routeOptions.config as unknown as Record<string, unknown> | undefined)?.[ROUTE_ACCESS] === 'signed';
    const problems = request.body === undefined || signed ? [] : jsonBodyProblems(request.body, REQUEST_SHAPE_LIMITS);
    done(problems.length > 0 ? new InvalidRequestException(problems) : undefined);
  });
}

/**
 * Reads JSON bodies as I-JSON (RFC 7493) asks, which the audit log's canonical form needs: UTF-8
 * only (a body declared in another charset is 415; bytes that are not UTF-8 are 400, rather than
 * read as U+FFFD, so that what is sealed or hashed is what was sent), and no member name twice
 * in an object (JSON.parse keeps the last, so a filter in front of sluice that reads the first
 * would check other text than sluice sends; 400 naming each place). Otherwise Fastify's own parser,
 * with its defaults (an empty body, invalid JSON, `__proto__` members are 400).
 */
export function parseJsonAsIJson(fastify: FastifyInstance): void {
  const parse = fastify.getDefaultJsonParser('error', 'error');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  fastify.removeContentTypeParser('application/json');
  fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const charset = charsetOf(request.headers['content-type']);
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      done(new UnsupportedMediaTypeException(`A JSON body must be UTF-8, not ${charset.slice(0, 40)}`), undefined);
      return;
    }
    let text: string;
    try {
      text = utf8.decode(body as Buffer);
    } catch {
      done(new InvalidRequestException([{ path: '(body)', message: 'must be UTF-8 (RFC 8259): it holds bytes that are not' }]), undefined);
      return;
    }
    const repeated = repeatedMemberNames(body as Buffer);
    if (repeated.count === 0) return parse(request, text, done);
    const problems: FieldProblem[] = repeated.paths.map((path) => ({ path, message: 'must not be given twice: the member names of a JSON object must be unique (RFC 7493)' }));
    if (repeated.count > repeated.paths.length) problems.push({ path: '(body)', message: `and ${repeated.count - repeated.paths.length} more problem(s) like those above` });
    done(new InvalidRequestException(problems), undefined);
  });
}

/** The charset parameter of a Content-Type, in lower case and unquoted; undefined without one. */
function charsetOf(contentType: string | undefined): string | undefined {
  const value = /;\s*charset\s*=\s*("?)([^";\s]*)\1/i.exec(contentType ?? '')?.[2];
  return value?.toLowerCase();
}

/**
 * The members of a JSON text (UTF-8) whose name an earlier member of the same object already has:
 * the first MAX_PROBLEMS_NAMED paths (`post.message`) and how many in all. Names are compared as
 * JSON reads them (`"a"` and `"\u0061"` are one name). One pass over the bytes, strings skipped at
 * indexOf's speed; it stops deeper than MAX_JSON_DEPTH, which the body is refused for anyway. A
 * text that is not JSON gives what it gives, for the parser to refuse.
 */
export function repeatedMemberNames(bytes: Buffer): { paths: string[]; count: number } {
  const paths: string[] = [];
  let count = 0;
  // From the outermost container in: an object's names so far and the name being read, or an array's index.
  const open: ({ names: Set<string>; name: string; expectsName: boolean } | { index: number })[] = [];
  const path = () => open.map((container) => ('names' in container ? container.name : String(container.index))).join('.');
  for (let i = 0; i < bytes.length; i++) {
    const character = bytes[i]!;
    if (character === 0x22) {
      const end = closingQuote(bytes, i);
      if (end === -1) return { paths, count };
      const container = open.at(-1);
      if (container !== undefined && 'names' in container && container.expectsName) {
        let name: string;
        try {
          name = bytes.indexOf(0x5c, i) < end ? (JSON.parse(bytes.toString('utf8', i, end + 1)) as string) : bytes.toString('utf8', i + 1, end);
        } catch {
          return { paths, count };
        }
        container.name = name;
        container.expectsName = false;
        if (!container.names.has(name)) container.names.add(name);
        else if (++count <= MAX_PROBLEMS_NAMED) paths.push(path());
      }
      i = end;
    } else if (character === 0x7b || character === 0x5b) {
      if (open.length === MAX_JSON_DEPTH) return { paths, count };
      open.push(character === 0x7b ? { names: new Set(), name: '', expectsName: true } : { index: 0 });
    } else if (character === 0x7d || character === 0x5d) {
      open.pop();
    } else if (character === 0x2c) {
      const container = open.at(-1);
      if (container === undefined) continue;
      if ('names' in container) container.expectsName = true;
      else container.index++;
    }
  }
  return { paths, count };
}

/** Bodies up to this size are parsed, then their depth looked at; larger ones the other way round. */
const DEPTH_CHECKED_BEFORE_PARSING_FROM = 64 * 1024;

/**
 * Whether a JSON text's arrays and objects nest deeper than `maxDepth`, brackets inside strings
 * not counted; stops at the first bracket too deep. Anything that is not JSON is the parser's to
 * refuse.
 */
export function nestsDeeperThan(bytes: Uint8Array, maxDepth: number): boolean {
  let depth = 0;
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < buffer.length; i++) {
    const byte = buffer[i]!;
    if (byte === 0x22) {
      const end = closingQuote(buffer, i);
      if (end === -1) return false;
      i = end;
    } else if (byte === 0x5b || byte === 0x7b) {
      if (++depth > maxDepth) return true;
    } else if (byte === 0x5d || byte === 0x7d) {
      depth--;
    }
  }
  return false;
}

/**
 * Where the string whose opening quote is at `opening` closes: the first quote after it that an
 * even number of backslashes precedes; -1 if none does. A photo inline as a data: URL is one long
 * string, skipped at indexOf's speed.
 */
function closingQuote(bytes: Buffer, opening: number): number {
  for (let end = bytes.indexOf(0x22, opening + 1); end !== -1; end = bytes.indexOf(0x22, end + 1)) {
    let backslashes = 0;
    while (bytes[end - 1 - backslashes] === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return end;
  }
  return -1;
}
