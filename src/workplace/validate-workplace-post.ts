import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import { flattenValidationErrors, type FieldProblem } from '../platform/http/problem.js';
import { withoutPrototypeKeys } from '../platform/http/validation.js';
import { WorkplacePostDto } from './workplace-post.dto.js';

/** Checks the fields sluice reads; unknown fields of a Workplace post are legitimate and stay. */
export async function validateWorkplacePost(post: unknown, path: string): Promise<FieldProblem[]> {
  if (post === null || typeof post !== 'object' || Array.isArray(post)) {
    return [{ path, message: `${path} must be a Workplace post object` }];
  }
  // Unknown fields may be named anything, "constructor" included: leave those out of validation.
  const errors = await validate(plainToInstance(WorkplacePostDto, withoutPrototypeKeys(post)), { whitelist: false, forbidUnknownValues: true });
  return flattenValidationErrors(errors, path);
}
