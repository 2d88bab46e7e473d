import type { FastifyInstance } from 'fastify';
import { type FieldProblem, InvalidRequestException } from './problem.js';

/** Deeper than this is no request sluice understands; refusing it bounds every recursive walk after. */
export const MAX_JSON_DEPTH = 64;
/** A high surrogate not followed by a low one, or a low one not preceded by a high one (code units: no u flag). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** A hostile body could hold millions of bad values: the answer names this many and counts the rest. */
const MAX_PROBLEMS = 100;

/**
 * What in a parsed JSON body sluice cannot take, as problems with their paths: numbers beyond the
 * range of a double (1e400 parses to Infinity), strings with lone surrogates (they have no UTF-8
 * form), in keys as in values, and nesting deeper than MAX_JSON_DEPTH. Such a body is not I-JSON
 * (RFC 7493), which the audit log's canonical form (RFC 8785) requires of everything it hashes.
 * Iterative, so that depth cannot overflow the stack here either.
 */
export function jsonBodyProblems(body: unknown): FieldProblem[] {
  const problems: FieldProblem[] = [];
  let more = 0;
  const report = (path: string, message: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push({ path: path || '(body)', message });
    else more++;
  };
  const stack: { value: unknown; path: string; depth: number; name?: string }[] = [{ value: body, path: '', depth: 0 }];
  while (stack.length > 0) {
    const { value, path, depth, name } = stack.pop()!;
    if (name !== undefined && LONE_SURROGATE.test(name)) report(path, 'the name must not contain lone UTF-16 surrogates');
    if (typeof value === 'number' && !Number.isFinite(value)) report(path, 'must be a number within the range of a double (about ±1.8e308)');
    else if (typeof value === 'string' && LONE_SURROGATE.test(value)) report(path, 'must not contain lone UTF-16 surrogates (\\ud800-\\udfff without their pair)');
    else if (value !== null && typeof value === 'object') {
      if (depth >= MAX_JSON_DEPTH) {
        report(path, `must not nest deeper than ${MAX_JSON_DEPTH} levels`);
        continue;
      }
      // Reversed onto the stack, so that problems come out in the order of the document.
      for (const [key, child] of Object.entries(value).reverse()) stack.push({ value: child, path: path ? `${path}.${key}` : key, depth: depth + 1, name: key });
    }
  }
  if (more > 0) problems.push({ path: '(body)', message: `and ${more} more problem(s) like those above` });
  return problems;
}

/** Refuses, with 400 naming each problem, a parsed body that jsonBodyProblems finds fault with. */
export function refuseUnrepresentableJson(fastify: FastifyInstance): void {
  fastify.addHook('preValidation', (request, _reply, done) => {
    const problems = request.body === undefined ? [] : jsonBodyProblems(request.body);
    done(problems.length > 0 ? new InvalidRequestException(problems) : undefined);
  });
}
