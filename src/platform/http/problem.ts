import {
  type ArgumentsHost,
  BadRequestException,
  Catch,
  type ExceptionFilter,
  HttpException,
  HttpStatus,
  Logger,
  UnauthorizedException,
} from '@nestjs/common';
import type { ValidationError } from 'class-validator';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { TooManyRequestsException } from './rate-limit.js';
import { Stackless } from './stackless.js';
import { STATUS_CODES } from 'node:http';
import { stackFrames } from '../observability/logger.js';
import { isDatabaseUnavailable } from '../database/database-unavailable.js';

export interface FieldProblem {
  /** Where in the request: a dotted path into the body, or a header/query name. */
  path: string;
  message: string;
}

/** A pool freed or a database back within seconds is the common case; a client should not hammer it meanwhile. */
const DATABASE_RETRY_AFTER_SECONDS = 2;

/** Problems named in one answer; the rest are counted, so that a small request cannot ask for a huge answer. */
export const MAX_PROBLEMS_NAMED = 100;

/** A 401 with the challenge its WWW-Authenticate header names: every 401 must carry one (RFC 9110, 15.5.2). */
export class ChallengedUnauthorizedException extends UnauthorizedException {
  constructor(
    message: string,
    readonly challenge: string,
  ) {
    super(message);
  }
}

/** A 400 that names every problem of the request, not just the first. Made without a stack trace (see withoutStackTrace). */
@Stackless
export class InvalidRequestException extends BadRequestException {
  declare readonly problems: FieldProblem[];

  constructor(problems: FieldProblem[]) {
    super('The request is not valid');
    // One over: jsonBodyProblems names as many and ends with its own count of the rest.
    this.problems =
      problems.length <= MAX_PROBLEMS_NAMED + 1
        ? problems
        : [...problems.slice(0, MAX_PROBLEMS_NAMED), { path: '(body)', message: `and ${problems.length - MAX_PROBLEMS_NAMED} more problem(s)` }];
  }
}

/** class-validator's constraints on a value's type. */
const TYPE_CONSTRAINTS: ReadonlySet<string> = new Set(['isDefined', 'isString', 'isInt', 'isNumber', 'isBoolean', 'isArray', 'isObject']);

export function flattenValidationErrors(errors: ValidationError[], prefix = '', problems: FieldProblem[] = []): FieldProblem[] {
  for (const error of errors) {
    const path = prefix ? `${prefix}.${error.property}` : error.property;
    const constraints = Object.entries(error.constraints ?? {});
    // A value of the wrong type (or none) breaks every rule about its length, range or form too, and
    // one that is no array every rule about its items: only its own type is the problem.
    const wrongType = constraints.filter(([name]) => TYPE_CONSTRAINTS.has(name));
    const ownType = wrongType.filter(([, message]) => !message.startsWith('each value in '));
    for (const [, message] of ownType.length > 0 ? ownType : wrongType.length > 0 ? wrongType : constraints) {
      problems.push({ path, message: message.replace(/^property (\S+) /, '$1 ') });
    }
    // Into the same array: spreading a child's many problems into push() overflows the stack.
    flattenValidationErrors(error.children ?? [], path, problems);
  }
  return problems;
}

/**
 * Renders every error as RFC 9457 problem+json. Anything that is not an HttpException is a
 * server fault: its details stay in the log (without request data), the caller gets a bare 500.
 */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Http');

  catch(exception: unknown, host: ArgumentsHost): void {
    replyWithProblem(host.switchToHttp().getRequest<FastifyRequest>(), host.switchToHttp().getResponse<FastifyReply>(), exception, this.logger);
  }
}

/**
 * Answers an exception as problem+json (with `extraHeaders`); a server fault is logged by its
 * type and stack frames, never its message. The filter's answer, and that of hooks that answer
 * before a route runs.
 */
export function replyWithProblem(request: FastifyRequest, reply: FastifyReply, exception: unknown, logger: Logger, extraHeaders: Record<string, string> = {}): FastifyReply {
  const { status, body, headers } = toProblem(exception, request.routeOptions?.bodyLimit);
  if (status >= 500) logger.error(`${request.method} ${request.routeOptions?.url ?? 'unknown route'} failed: ${describeFault(exception)}`);
  return reply.status(status).headers({ ...headers, ...extraHeaders }).header('content-type', 'application/problem+json').send(body);
}

export interface Problem {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** `bodyLimit`: the limit of the route the request was for, named when a body was too large. */
export function toProblem(exception: unknown, bodyLimit?: number): Problem {
  if (exception instanceof TooManyRequestsException) {
    return {
      status: 429,
      headers: { 'retry-after': String(exception.retryAfterSeconds) },
      body: {
        type: 'urn:sluice:problem:rate-limited',
        title: 'too many requests',
        status: 429,
        detail: exception.message,
        retryAfter: exception.retryAfterSeconds,
      },
    };
  }
  if (fastifyCode(exception) === 'FST_ERR_CTP_BODY_TOO_LARGE' && bodyLimit !== undefined) {
    return {
      status: 413,
      body: {
        type: 'urn:sluice:problem:body-too-large',
        title: 'payload too large',
        status: 413,
        detail: `The request body is larger than the ${bodyLimit} bytes (${formatBytes(bodyLimit)}) this route accepts`,
        limit: bodyLimit,
      },
    };
  }
  if (fastifyCode(exception) === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return { status: 415, body: { type: 'about:blank', title: statusTitle(415), status: 415, detail: 'Send the body as JSON: Content-Type application/json, in UTF-8' } };
  }
  const unparsable = UNPARSABLE_BODY.get(fastifyCode(exception));
  if (unparsable) return toProblem(new InvalidRequestException([{ path: '(body)', message: unparsable }]));
  if (exception instanceof InvalidRequestException) {
    return {
      status: 400,
      body: {
        type: 'urn:sluice:problem:invalid-request',
        title: 'The request is not valid',
        status: 400,
        detail: `${exception.problems.length} problem(s): ${exception.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
        errors: exception.problems,
      },
    };
  }
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    const response = exception.getResponse();
    const detail = typeof response === 'string' ? response : (response as { message?: unknown }).message;
    return {
      status,
      ...(exception instanceof ChallengedUnauthorizedException ? { headers: { 'www-authenticate': exception.challenge } } : {}),
      body: {
        type: 'about:blank',
        title: statusTitle(status),
        status,
        ...(typeof detail === 'string' ? { detail } : Array.isArray(detail) ? { detail: detail.join('; ') } : {}),
      },
    };
  }
  const fastifyStatus = (exception as { statusCode?: unknown })?.statusCode;
  if (typeof fastifyStatus === 'number' && fastifyStatus >= 400 && fastifyStatus < 500) {
    // Errors Fastify raises before a route runs: unparsable JSON, body too large, bad media type.
    return {
      status: fastifyStatus,
      body: {
        type: 'about:blank',
        title: statusTitle(fastifyStatus),
        status: fastifyStatus,
        detail: (exception as Error).message,
      },
    };
  }
  if (isDatabaseUnavailable(exception)) {
    return {
      status: 503,
      headers: { 'retry-after': String(DATABASE_RETRY_AFTER_SECONDS) },
      body: {
        type: 'urn:sluice:problem:database-unavailable',
        title: 'service unavailable',
        status: 503,
        detail: 'The database cannot serve this request now (busy, or out of reach); nothing was written. Try again.',
        retryAfter: DATABASE_RETRY_AFTER_SECONDS,
      },
    };
  }
  return { status: 500, body: { type: 'about:blank', title: 'internal server error', status: 500 } };
}

/**
 * Bodies Fastify's JSON parser refuses, in the words of every other invalid request. It refuses a
 * member named __proto__ (or constructor holding prototype) as it refuses broken JSON, and says
 * the same of both.
 */
const UNPARSABLE_BODY = new Map<unknown, string>([
  ['FST_ERR_CTP_INVALID_JSON_BODY', 'must be valid JSON (RFC 8259), without a member named __proto__ or a constructor member holding prototype'],
  ['FST_ERR_CTP_EMPTY_JSON_BODY', 'must not be empty: send a JSON object'],
]);

/** The status's name in words, e.g. "payload too large". */
export function statusTitle(status: number): string {
  return (HttpStatus[status]?.toString().replaceAll('_', ' ') ?? STATUS_CODES[status])?.toLowerCase() ?? 'error';
}

/** Nest hands Fastify's own 4xx errors (body too large, bad JSON) over as the cause of an HttpException. */
function fastifyCode(exception: unknown): unknown {
  const error = exception as { code?: unknown; cause?: { code?: unknown } } | null | undefined;
  return error?.code ?? error?.cause?.code;
}

function formatBytes(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} bytes`;
}

/**
 * A server fault for the log: its type, code and first stack frames, never its message (a driver
 * error's message can quote the personal data of a query).
 */
function describeFault(exception: unknown): string {
  if (exception instanceof Error) {
    const code = (exception as { code?: unknown }).code;
    // The frames only: a message, which may quote the input, can span several lines.
    const frames = stackFrames(exception.stack)?.split('\n').slice(0, 5).join('\n') ?? '';
    return `${exception.name}${typeof code === 'string' ? ` (${code})` : ''}\n${frames}`;
  }
  return typeof exception;
}
