import { Transform, Type } from 'class-transformer';
import {
  IsIn,
  IsISO8601,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  MaxLength,
  Validate,
  type ValidationArguments,
  ValidateNested,
  ValidatorConstraint,
  type ValidatorConstraintInterface,
} from 'class-validator';
import { SLUICE_EVIDENCE_METHODS } from '../evidence-methods.js';
import { canonicalWhatsAppId, isSubjectType, PURPOSE_PATTERN, SUBJECT_ID_PATTERNS, SUBJECT_TYPES, type SubjectType } from '../subject.js';

@ValidatorConstraint({ name: 'subjectIdMatchesType' })
class SubjectIdMatchesType implements ValidatorConstraintInterface {
  validate(id: unknown, args: ValidationArguments): boolean {
    const type = (args.object as ConsentSubjectDto).type;
    return typeof id === 'string' && isSubjectType(type) && SUBJECT_ID_PATTERNS[type].test(id);
  }

  defaultMessage(args: ValidationArguments): string {
    return (args.object as ConsentSubjectDto).type === 'whatsapp'
      ? 'id must be a phone number in international format, digits only (e.g. 31612345678)'
      : 'id must be a numeric Workplace id, without leading zeros';
  }
}

export class ConsentSubjectDto {
  @IsIn(SUBJECT_TYPES)
  type: SubjectType;

  @Transform(({ value, obj }: { value: unknown; obj: { type?: unknown } }) => (obj.type === 'whatsapp' && typeof value === 'string' ? canonicalWhatsAppId(value) : value))
  @IsString()
  @Validate(SubjectIdMatchesType)
  id: string;
}

/** A date and time that names its zone: a capture time without one would be read in the server's. */
const ZONED_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;
/** Clocks disagree a little; a capture further ahead than this has not happened yet. */
const CLOCK_SKEW_MS = 5 * 60_000;

@ValidatorConstraint({ name: 'capturedInThePast' })
class CapturedInThePast implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    if (typeof value !== 'string') return false;
    const time = Date.parse(value);
    // A time that does not parse (a leap second, 23:59:60) is the date check's to name.
    return Number.isNaN(time) || time <= Date.now() + CLOCK_SKEW_MS;
  }

  defaultMessage(): string {
    return 'evidence.capturedAt must not be in the future';
  }
}

/** How consent was captured, as a code: the audit log names it if it is a well-known one (evidence-methods.ts), else writes `other`. */
export const EVIDENCE_METHOD_PATTERN = /^[a-z][a-z0-9-]{0,49}$/;

@ValidatorConstraint({ name: 'notSluicesOwnMethod' })
class NotSluicesOwnMethod implements ValidatorConstraintInterface {
  validate(method: unknown): boolean {
    return typeof method !== 'string' || !SLUICE_EVIDENCE_METHODS.has(method);
  }

  defaultMessage(args: ValidationArguments): string {
    return `evidence.method ${String(args.value)} is recorded by sluice itself (a contact's STOP, WhatsApp's notice of a new number); name how you captured this one, e.g. form or in-app`;
  }
}

export class ConsentEvidenceDto {
  @IsString()
  @Matches(EVIDENCE_METHOD_PATTERN, { message: 'evidence.method must be a code of lower-case letters, digits and dashes (e.g. form, whatsapp-opt-in), at most 50 characters; describe the evidence in evidence.text' })
  @Validate(NotSluicesOwnMethod)
  method: string;

  @IsOptional()
  @IsString()
  @MaxLength(2000)
  text?: string;

  /** When the consent was given or withdrawn: a grant captured no later than the latest change recorded does not undo a withdrawal. */
  @IsOptional()
  @IsString()
  @IsISO8601({ strict: true })
  @Matches(ZONED_TIME, { message: 'evidence.capturedAt must be a date and time with its zone, e.g. 2026-11-20T09:00:00Z or 2026-11-20T10:00:00+01:00' })
  @Validate(CapturedInThePast)
  capturedAt?: string;
}

export class RecordConsentDto {
  @IsObject()
  @ValidateNested()
  @Type(() => ConsentSubjectDto)
  subject: ConsentSubjectDto;

  @IsString()
  @Matches(PURPOSE_PATTERN, { message: 'purpose must be lower-case letters, digits and dashes' })
  purpose: string;

  @IsIn(['granted', 'withdrawn'])
  status: 'granted' | 'withdrawn';

  @IsObject()
  @ValidateNested()
  @Type(() => ConsentEvidenceDto)
  evidence: ConsentEvidenceDto;
}
