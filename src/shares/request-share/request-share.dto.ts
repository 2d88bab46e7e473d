import { Transform, Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  ArrayUnique,
  IsArray,
  IsObject,
  IsString,
  Matches,
  ValidateNested,
} from 'class-validator';
import { canonicalWhatsAppId, PURPOSE_PATTERN, SUBJECT_ID_PATTERNS } from '../../consent/subject.js';

export class SharedByDto {
  @IsString() @Matches(SUBJECT_ID_PATTERNS.workplace, { message: 'workplaceUserId must be a numeric Workplace id, without leading zeros' })
  workplaceUserId: string;
}

export class RecipientDto {
  @Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? canonicalWhatsAppId(value) : value))
  @IsString()
  @Matches(SUBJECT_ID_PATTERNS.whatsapp, { message: 'waId must be a phone number in international format, digits only (e.g. 31612345678)' })
  waId: string;
}

/** Hard ceiling on the request; a policy usually sets a lower limit (limits.too_many_recipients). */
export const MAX_RECIPIENTS_PER_REQUEST = 256;

export class RequestShareDto {
  @IsString() @Matches(PURPOSE_PATTERN, { message: 'purpose must be lower-case letters, digits and dashes' })
  purpose: string;

  @IsObject() @ValidateNested() @Type(() => SharedByDto)
  sharedBy: SharedByDto;

  /** Validated separately (validateWorkplacePost): its unknown fields must survive validation. */
  @IsObject()
  post: Record<string, unknown>;

  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_RECIPIENTS_PER_REQUEST)
  @ArrayUnique((r: RecipientDto) => r?.waId, { message: 'recipients must not repeat a waId' })
  // IsObject too: ValidateNested walks into an array nested in the array and finds nothing wrong with it.
  @IsObject({ each: true })
  @ValidateNested({ each: true })
  @Type(() => RecipientDto)
  recipients: RecipientDto[];
}
