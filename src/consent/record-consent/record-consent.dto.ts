import { Type } from 'class-transformer';
import {
  IsIn,
  IsISO8601,
  IsNotEmpty,
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
import { isSubjectType, PURPOSE_PATTERN, SUBJECT_ID_PATTERNS, SUBJECT_TYPES, type SubjectType } from '../subject.js';

@ValidatorConstraint({ name: 'subjectIdMatchesType' })
class SubjectIdMatchesType implements ValidatorConstraintInterface {
  validate(id: unknown, args: ValidationArguments): boolean {
    const type = (args.object as ConsentSubjectDto).type;
    return typeof id === 'string' && isSubjectType(type) && SUBJECT_ID_PATTERNS[type].test(id);
  }

  defaultMessage(args: ValidationArguments): string {
    return (args.object as ConsentSubjectDto).type === 'whatsapp'
      ? 'id must be a phone number in international format, digits only (e.g. 31612345678)'
      : 'id must be a numeric Workplace id';
  }
}

export class ConsentSubjectDto {
  @IsIn(SUBJECT_TYPES)
  type: SubjectType;

  @IsString()
  @Validate(SubjectIdMatchesType)
  id: string;
}

export class ConsentEvidenceDto {
  @IsString()
  @IsNotEmpty()
  @MaxLength(100)
  method: string;

  @IsOptional()
  @IsString()
  @MaxLength(2000)
  text?: string;

  @IsOptional()
  @IsISO8601({ strict: true })
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
