import { type ArgumentMetadata, Injectable, type PipeTransform } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import { flattenValidationErrors, InvalidRequestException } from './problem.js';

const VALIDATION_OPTIONS = { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true } as const;

/** Validates a body against a class-validator DTO and returns the DTO instance, or 400 with every problem. */
export async function validateDto<T extends object>(type: new () => T, value: unknown): Promise<T> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidRequestException([{ path: '(body)', message: 'must be a JSON object' }]);
  }
  const instance = plainToInstance(type, value);
  const errors = await validate(instance, VALIDATION_OPTIONS);
  if (errors.length > 0) throw new InvalidRequestException(flattenValidationErrors(errors));
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
