import { type ArgumentMetadata, Injectable, type PipeTransform } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import { type FieldProblem, flattenValidationErrors, InvalidRequestException } from './problem.js';

const VALIDATION_OPTIONS = { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true } as const;

/** Keys that name Object.prototype machinery: class-transformer cannot copy them onto an instance. */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Whether parsed JSON holds a PROTOTYPE_KEYS key anywhere. */
function hasPrototypeKey(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) return value.some(hasPrototypeKey);
  for (const key of Object.keys(value)) {
    if (PROTOTYPE_KEYS.has(key) || hasPrototypeKey((value as Record<string, unknown>)[key])) return true;
  }
  return false;
}

function copyWithoutPrototypeKeys(value: unknown, path: string, found: string[]): unknown {
  if (Array.isArray(value)) return value.map((item, i) => copyWithoutPrototypeKeys(item, path ? `${path}.${i}` : String(i), found));
  if (value === null || typeof value !== 'object') return value;
  const copy: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    const childPath = path ? `${path}.${key}` : key;
    if (PROTOTYPE_KEYS.has(key)) found.push(childPath);
    else copy[key] = copyWithoutPrototypeKeys(child, childPath, found);
  }
  return copy;
}

/**
 * Parsed JSON without the keys class-transformer chokes on (it throws on them: a 500 for bad
 * input), and the paths where they were. A value without any is returned as it is, not copied:
 * plainToInstance copies what it is given, so the copy would only cost time on every request.
 */
export function withoutPrototypeKeys(value: unknown, path = '', found: string[] = []): unknown {
  return hasPrototypeKey(value) ? copyWithoutPrototypeKeys(value, path, found) : value;
}

/** A DTO instance, or every problem of the value; for callers that name other problems alongside. */
export type DtoCheck<T> = { instance: T; problems: [] } | { instance: undefined; problems: FieldProblem[] };

/** Validates a value against a class-validator DTO, without throwing: see validateDto. */
export async function checkDto<T extends object>(type: new () => T, value: unknown): Promise<DtoCheck<T>> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { instance: undefined, problems: [{ path: '(body)', message: 'must be a JSON object' }] };
  }
  const prototypeKeys: string[] = [];
  const instance = plainToInstance(type, withoutPrototypeKeys(value, '', prototypeKeys));
  const errors = await validate(instance, VALIDATION_OPTIONS);
  if (prototypeKeys.length === 0 && errors.length === 0) return { instance, problems: [] };
  const problems = [...prototypeKeys.map((path) => ({ path, message: `property ${path.split('.').at(-1)} should not exist` })), ...flattenValidationErrors(errors)];
  return problems.length > 0 ? { instance: undefined, problems } : { instance, problems: [] };
}

/** Validates a body against a class-validator DTO and returns the DTO instance, or 400 with every problem. */
export async function validateDto<T extends object>(type: new () => T, value: unknown): Promise<T> {
  const checked = await checkDto(type, value);
  if (checked.instance === undefined) throw new InvalidRequestException(checked.problems);
  return checked.instance;
}

const NOT_VALIDATED: ReadonlySet<unknown> = new Set([Object, String, Number, Boolean, Array]);

@Injectable()
export class DtoValidationPipe implements PipeTransform {
  // Not async: a value that is not validated passes without a promise.
  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    const type = metadata.metatype;
    if (metadata.type !== 'body' || !type || NOT_VALIDATED.has(type)) return value;
    return validateDto(type as new () => object, value);
  }
}
