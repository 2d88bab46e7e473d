import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsIn,
  IsInt,
  IsISO8601,
  IsNumber,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';

/**
 * The parts of a Workplace Graph API post object that sluice reads, validated for type and size.
 * Other fields of the post are allowed and kept (a policy may allow-list them), so this class is
 * validated without the whitelist: see validateWorkplacePost.
 */
export class WorkplaceProfileDto {
  @IsString() @Matches(/^[0-9]{1,30}$/, { message: 'id must be a numeric Workplace id' })
  id: string;

  @IsOptional() @IsString() @MaxLength(200)
  name?: string;
}

export class WorkplaceMessageTagDto {
  @IsString() @Matches(/^[0-9]{1,30}$/, { message: 'id must be a numeric Workplace id' })
  id: string;

  @IsString() @MaxLength(200)
  name: string;

  @IsOptional() @IsIn(['user', 'page', 'group', 'event', 'application'])
  type?: string;

  /** UTF-16 code unit offset into message, as Workplace gives it. */
  @IsInt() @Min(0) @Max(63206)
  offset: number;

  @IsInt() @Min(1) @Max(63206)
  length: number;
}

export class WorkplaceLocationDto {
  @IsOptional() @IsNumber() @Min(-90) @Max(90)
  latitude?: number;

  @IsOptional() @IsNumber() @Min(-180) @Max(180)
  longitude?: number;
}

export class WorkplacePlaceDto {
  @IsOptional() @IsString() @MaxLength(500)
  name?: string;

  @IsOptional() @IsObject() @ValidateNested() @Type(() => WorkplaceLocationDto)
  location?: WorkplaceLocationDto;
}

export class WorkplaceAttachmentsDto {
  @IsArray() @ArrayMaxSize(20) @IsObject({ each: true })
  data: Record<string, unknown>[];
}

export class WorkplacePostDto {
  @IsString() @Matches(/^[0-9]{1,30}(_[0-9]{1,30})?$/, { message: 'id must be a Workplace post id such as 1234567890_987654321' })
  id: string;

  /** Workplace's own limit for a post's text. */
  @IsOptional() @IsString() @MaxLength(63206)
  message?: string;

  @IsObject() @ValidateNested() @Type(() => WorkplaceProfileDto)
  from: WorkplaceProfileDto;

  @IsOptional() @IsISO8601()
  created_time?: string;

  @IsOptional() @IsString() @MaxLength(2000)
  permalink_url?: string;

  // IsObject too: ValidateNested walks into an array nested in the array and finds nothing wrong with it.
  @IsOptional() @IsArray() @ArrayMaxSize(100) @IsObject({ each: true }) @ValidateNested({ each: true }) @Type(() => WorkplaceMessageTagDto)
  message_tags?: WorkplaceMessageTagDto[];

  @IsOptional() @IsObject() @ValidateNested() @Type(() => WorkplacePlaceDto)
  place?: WorkplacePlaceDto;

  @IsOptional() @IsObject() @ValidateNested() @Type(() => WorkplaceAttachmentsDto)
  attachments?: WorkplaceAttachmentsDto;
}
