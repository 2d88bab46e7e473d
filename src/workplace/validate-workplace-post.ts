import { plainToInstance } from 'class-transformer';
import { getMetadataStorage, validate } from 'class-validator';
import { flattenValidationErrors, type FieldProblem } from '../platform/http/problem.js';
import { withoutPrototypeKeys } from '../platform/http/validation.js';
import { WorkplacePostDto } from './workplace-post.dto.js';

const OPTIONS = { whitelist: false, forbidUnknownValues: true } as const;

let validatedFields: readonly string[] | undefined;

/** The post's fields WorkplacePostDto has constraints for: validation looks at no other. */
function fieldsOfDto(): readonly string[] {
  validatedFields ??= [...new Set(getMetadataStorage().getTargetValidationMetadatas(WorkplacePostDto, '', false, false).map((m) => m.propertyName))];
  return validatedFields;
}

/** Checks the fields sluice reads; unknown fields of a Workplace post are legitimate and stay. */
export async function validateWorkplacePost(post: unknown, path: string): Promise<FieldProblem[]> {
  if (post === null || typeof post !== 'object' || Array.isArray(post)) {
    return [{ path, message: `${path} must be a Workplace post object` }];
  }
  // Without the whitelist, validation never looks at an unknown field: only the known ones are
  // copied into the instance, so that a post's other fields (any number, any size) cost nothing.
  // Those may be named anything, "constructor" included.
  const known: Record<string, unknown> = {};
  for (const field of fieldsOfDto()) if (Object.hasOwn(post, field)) known[field] = (post as Record<string, unknown>)[field];
  const errors = await validate(plainToInstance(WorkplacePostDto, withoutPrototypeKeys(known)), OPTIONS);
  return flattenValidationErrors(errors, path);
}
