import { type Attributes, context, ROOT_CONTEXT, type Span, SpanStatusCode, trace } from '@opentelemetry/api';
import { requestContext } from './logger.js';

export const TRACER_NAME = 'sluice';

export interface TracedOptions<A extends unknown[], T> {
  /** Attributes from the call's (first) arguments: ids, counts and codes only, never personal data. */
  attributes?: (...args: A) => Attributes;
  /** Attributes from the result (resolved, for an async method), same rule. */
  result?: (result: T) => Attributes;
}

/**
 * Runs the method in a span named `name` (e.g. `sluice.share.request`), the current span while it
 * runs, so database and HTTP spans below it are its children. A failure marks the span as an
 * error with its error type only: an error message may quote the input. No released Nest
 * instrumentation supports Nest 12, hence this decorator on handlers and services.
 */
export function Traced<A extends unknown[] = never[], T = unknown>(name: string, options: TracedOptions<A, T> = {}) {
  return <M extends (...args: [...A, ...never[]]) => T | Promise<T>>(_target: object, _key: string | symbol, descriptor: TypedPropertyDescriptor<M>): void => {
    const original: (...args: [...A, ...never[]]) => T | Promise<T> = descriptor.value!;
    const traced = function (this: unknown, ...args: [...A, ...never[]]): T | Promise<T> {
      return trace.getTracer(TRACER_NAME).startActiveSpan(name, { attributes: safely(() => options.attributes?.(...(args as unknown as A))) }, (span) => {
        let result: T | Promise<T>;
        try {
          result = original.apply(this, args);
        } catch (error) {
          throw failed(span, error);
        }
        if (result instanceof Promise) {
          return result.then(
            (value) => succeeded(span, options, value),
            (error: unknown) => {
              throw failed(span, error);
            },
          );
        }
        return succeeded(span, options, result);
      });
    };
    Object.defineProperty(traced, 'name', { value: original.name });
    descriptor.value = traced as M;
  };
}

function succeeded<A extends unknown[], T>(span: Span, options: TracedOptions<A, T>, value: T): T {
  span.setAttributes(safely(() => options.result?.(value)));
  span.end();
  return value;
}

function failed(span: Span, error: unknown): unknown {
  span.setAttribute('error.type', error instanceof Error ? error.name : typeof error);
  span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
  return error;
}

/** Telemetry never changes what the traced code does: a failing attribute mapper only loses attributes. */
function safely(attributes: () => Attributes | undefined): Attributes {
  try {
    return attributes() ?? {};
  } catch {
    return {};
  }
}

/**
 * Runs the method outside the caller's trace and request. For a method that starts background
 * work (a timer, a polling pass): that work must not join, forever after, the trace of the request
 * that happened to wake it, nor carry that request's id in its log lines.
 */
export function OutsideTrace() {
  return <M extends (...args: never[]) => unknown>(_target: object, _key: string | symbol, descriptor: TypedPropertyDescriptor<M>): void => {
    const original: (...args: never[]) => unknown = descriptor.value!;
    const detached = function (this: unknown, ...args: never[]): unknown {
      return requestContext.exit(() => context.with(ROOT_CONTEXT, () => original.apply(this, args)));
    };
    Object.defineProperty(detached, 'name', { value: original.name });
    descriptor.value = detached as M;
  };
}
