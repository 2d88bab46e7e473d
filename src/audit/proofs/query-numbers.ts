import type { FieldProblem } from '../../platform/http/problem.js';

/**
 * A non-negative decimal integer from a query parameter (or a CLI option), or a problem naming it:
 * signs, exponents, repeats and values beyond 2^53 are refused, not guessed at.
 */
export function parseIndexParameter(value: unknown, name: string, problems: FieldProblem[], required = false): number | undefined {
  if (value === undefined) {
    if (required) problems.push({ path: name, message: `${name} is required` });
    return undefined;
  }
  if (typeof value === 'string' && /^(0|[1-9][0-9]{0,15})$/.test(value) && Number.isSafeInteger(Number(value))) return Number(value);
  problems.push({ path: name, message: indexProblem(value, name) });
  return undefined;
}

/** What is wrong with a value that is no index, said as precisely as the value allows. */
function indexProblem(value: unknown, name: string): string {
  if (Array.isArray(value)) return `${name} is given more than once`;
  if (typeof value === 'string' && /^[0-9]+$/.test(value)) {
    if (value.length > 1 && value.startsWith('0')) return `${name} must be written without leading zeros`;
    return `${name} must be at most ${Number.MAX_SAFE_INTEGER}`;
  }
  return `${name} must be a non-negative integer`;
}
