import { type ArgumentMetadata, Injectable, type PipeTransform } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import { flattenValidationErrors, InvalidRequestException } from './problem.js';

const VALIDATION_OPTIONS = { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true } as const;

/** Keys that name Object.prototype machinery: class-transformer cannot copy them onto an instance. */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * A deep copy of parsed JSON without the keys class-transformer chokes on (it throws on them: a
 * 500 for bad input), and the paths where they were.
 */
export function withoutPrototypeKeys(value: unknown, path = '', found: string[] = []): unknown {
  if (Array.isArray(value)) return value.map((item, i) => withoutPrototypeKeys(item, path ? `${path}.${i}` : String(i), found));
  if (value === null || typeof value !== 'object') return value;
  const copy: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    const childPath = path ? `${path}.${key}` : key;
    if (PROTOTYPE_KEYS.has(key)) found.push(childPath);
    else copy[key] = withoutPrototypeKeys(child, childPath, found);
  }
  return copy;
}

/** Validates a body against a class-validator DTO and returns the DTO instance, or 400 with every problem. */
export async function validateDto<T extends object>(type: new () => T, value: unknown): Promise<T> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidRequestException([{ path: '(body)', message: 'must be a JSON object' }]);
  }
  const prototypeKeys: string[] = [];
  const instance = plainToInstance(type, withoutPrototypeKeys(value, '', prototypeKeys));
  const errors = await validate(instance, VALIDATION_OPTIONS);
  const problems = [...prototypeKeys.map((path) => ({ path, message: `property ${path.split('.').at(-1)} should not exist` })), ...flattenValidationErrors(errors)];
  if (problems.length > 0) throw new InvalidRequestException(problems);
  return instance;
}

@Injectable()
export class DtoValidationPipe implements PipeTransform {
  async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const type = metadata.metatype;
    if (metadata.type !== 'body' || !type || [Object, String, Number, Boolean, Array].includes(type as never)) return value;
    return validateDto(type as new () => object, value);
  }
}
