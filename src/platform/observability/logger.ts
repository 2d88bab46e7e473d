import type { LoggerService } from '@nestjs/common';
import { context, isSpanContextValid, trace } from '@opentelemetry/api';
import { AsyncLocalStorage } from 'node:async_hooks';
import { type DestinationStream, type Logger, pino } from 'pino';
import type { SluiceConfig } from '../config/config.js';

/** The request being handled, for log lines written by code that has no request object at hand. */
export const requestContext = new AsyncLocalStorage<{ requestId: string }>();

/** LOG_LEVEL keeps Nest's names; `silent` is for a gateway started without logs. */
export type LogLevelSetting = SluiceConfig['logLevel'] | 'silent';

const PINO_LEVELS: Record<LogLevelSetting, pino.LevelWithSilent> = { silent: 'silent', error: 'error', warn: 'warn', log: 'info', debug: 'debug', verbose: 'trace' };

let stdout: DestinationStream | undefined;

export const REDACTED = '[redacted]';

/**
 * A second line of defence: sluice never logs request data on purpose, and fields of these names
 * are censored at any depth should a request, a post, a recipient, a header, a webhook or a
 * database error reach a log line anyway.
 */
const REDACTED_KEYS = new Set([
  'authorization',
  'cookie',
  'body',
  'post',
  'message',
  'message_tags',
  'from',
  'recipients',
  'recipient_id',
  'recipient_user_id',
  'from_user_id',
  'user_id',
  'userId',
  'username',
  'waId',
  'wa_id',
  'to',
  'contacts',
  'profile',
  'phone',
  'email',
  'name',
  'text',
  'evidence',
  'subject',
  'url',
  'query',
  'params',
  'parameters',
  'detail',
  'driverError',
]);
/** Keys whose values their serializers shape (a Fastify request is a large object graph). */
const SERIALIZED_KEYS = new Set(['req', 'res', 'err']);
const MAX_DEPTH = 8;

/**
 * Censors REDACTED_KEYS at any depth and logs every error, under whatever key, as errorSerializer
 * does (a database error's own fields can hold the statement's values). Objects of any class are
 * walked by their own fields, as JSON would show them; binary data is logged by its size only, and
 * what is nested deeper than MAX_DEPTH is left out.
 */
export function censorDeep(value: unknown, depth = 0): unknown {
  if (value instanceof Error) return errorSerializer(value);
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  if (ArrayBuffer.isView(value)) return `[${value.byteLength} bytes]`;
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (Array.isArray(value)) return value.map((item) => censorDeep(item, depth + 1));
  if (value instanceof Map || value instanceof Set) return `[${value.constructor.name} of ${value.size}]`;
  const censored: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    censored[key] = REDACTED_KEYS.has(key) ? REDACTED : depth === 0 && SERIALIZED_KEYS.has(key) ? item : censorDeep(item, depth + 1);
  }
  return censored;
}

/** What of a request a log line may show: the method and the route template, never the URL (it holds subject ids). */
function requestSerializer(request: { method?: string; routeOptions?: { url?: string } }): Record<string, unknown> {
  return { method: request.method, route: request.routeOptions?.url };
}

/** An error's type, code and stack frames; not its message, which may quote the input that caused it. */
export function errorSerializer(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { type: typeof error };
  const { code, statusCode } = error as Error & { code?: unknown; statusCode?: unknown };
  return { type: error.name, ...(code !== undefined ? { code } : {}), ...(statusCode !== undefined ? { statusCode } : {}), stack: stackFrames(error.stack) };
}

/** The "at ..." lines of a stack: the first line repeats the message. */
export function stackFrames(stack: string | undefined): string | undefined {
  if (!stack) return undefined;
  const frames = stack.split('\n').filter((line) => /^\s+at /.test(line));
  return frames.length > 0 ? frames.join('\n') : undefined;
}

/**
 * The one pino logger of the process: JSON lines on stdout, shared by Nest (NestPinoLogger) and
 * Fastify (loggerInstance). Each line written while a span is current carries its trace_id and
 * span_id, and each line written inside a request its reqId (Fastify's own request loggers bind
 * it already).
 */
export function createLogger(level: LogLevelSetting, destination?: DestinationStream): Logger {
  // Synchronous: the last lines before a crash or exit are not lost. One stream for every app of the process.
  destination ??= stdout ??= pino.destination({ dest: 1, sync: true });
  const logger: Logger = pino(
    {
      level: PINO_LEVELS[level],
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      // censorDeep is the redaction: pino's own (by path) would only repeat part of it.
      formatters: { level: (label) => ({ level: label }), log: (line) => censorDeep(line) as Record<string, unknown> },
      serializers: { req: requestSerializer, res: (reply: { statusCode?: number }) => ({ statusCode: reply.statusCode }), err: errorSerializer },
      mixin(line, _level, emitter) {
        const fields: Record<string, unknown> = {};
        const request = requestContext.getStore();
        if (request && emitter === logger && !('reqId' in line)) fields.reqId = request.requestId;
        const span = trace.getSpan(context.active())?.spanContext();
        if (span && isSpanContextValid(span)) Object.assign(fields, { trace_id: span.traceId, span_id: span.spanId, trace_flags: span.traceFlags.toString(16).padStart(2, '0') });
        return fields;
      },
    },
    destination,
  );
  return logger;
}

/** Nest's LoggerService on the pino logger: `context` is Nest's logger name (e.g. RequestShare). */
export class NestPinoLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params);
  }

  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }

  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }

  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }

  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params);
  }

  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  /** Nest passes its logger name last and, for errors, a stack before it. */
  private write(level: pino.Level, message: unknown, params: unknown[]): void {
    const rest = [...params];
    const name = rest.length > 0 && typeof rest.at(-1) === 'string' && !isStack(rest.at(-1) as string) ? (rest.pop() as string) : undefined;
    const stack = rest.find((param): param is string => typeof param === 'string' && isStack(param));
    const fields: Record<string, unknown> = { ...(name ? { context: name } : {}), ...(stack ? { stack: stackFrames(stack) } : {}) };
    if (message instanceof Error) this.logger[level]({ ...fields, err: message }, message.name);
    else if (typeof message === 'object' && message !== null) this.logger[level]({ ...fields, ...message });
    else this.logger[level](fields, String(message));
  }
}

function isStack(text: string): boolean {
  return /\n\s+at /.test(text);
}
