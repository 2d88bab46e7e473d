import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { context, SpanStatusCode, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { requestContext } from '../../../src/platform/observability/logger.js';
import { OutsideTrace, Traced } from '../../../src/platform/observability/traced.js';
import { TestContextManager } from './test-context-manager.js';

const memory = new InMemorySpanExporter();

class Handler {
  readonly seen: string[] = [];

  @Traced('sluice.test.execute', { attributes: (command: { id: string; phone: string }) => ({ 'sluice.command.id': command.id }), result: (r: { status: string }) => ({ 'sluice.status': r.status }) })
  async execute(command: { id: string; phone: string }): Promise<{ status: string }> {
    this.seen.push(command.phone);
    await this.lookup();
    return { status: 'accepted' };
  }

  @Traced('sluice.test.lookup')
  async lookup(): Promise<void> {}

  @Traced('sluice.test.fail')
  async fail(phone: string): Promise<never> {
    throw new RangeError(`no consent for ${phone}`);
  }

  @Traced('sluice.test.sync', { attributes: () => ({ 'sluice.bad': (undefined as unknown as { x: string }).x }) })
  add(a: number, b: number): number {
    return a + b;
  }

  @OutsideTrace()
  wake(): string | undefined {
    return trace.getActiveSpan()?.spanContext().spanId;
  }

  /** What a timer the method sets sees: the work it starts in the background. */
  @OutsideTrace()
  wakeLater(): Promise<{ requestId: string | undefined; spanId: string | undefined }> {
    return new Promise((resolve) => setTimeout(() => resolve({ requestId: requestContext.getStore()?.requestId, spanId: trace.getActiveSpan()?.spanContext().spanId }), 1));
  }
}

describe('@Traced', () => {
  beforeAll(() => {
    context.setGlobalContextManager(new TestContextManager());
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] }));
  });
  afterAll(() => {
    trace.disable();
    context.disable();
  });

  it('runs the method in a span with attributes from its arguments and result; spans below it are its children', async () => {
    memory.reset();
    const handler = new Handler();
    expect(await handler.execute({ id: 'shr_1', phone: '31612345678' })).toEqual({ status: 'accepted' });
    expect(handler.seen).toEqual(['31612345678']);
    const [lookup, execute] = memory.getFinishedSpans();
    expect(execute).toMatchObject({ name: 'sluice.test.execute', attributes: { 'sluice.command.id': 'shr_1', 'sluice.status': 'accepted' }, status: { code: SpanStatusCode.UNSET } });
    expect(lookup!.name).toBe('sluice.test.lookup');
    expect(lookup!.parentSpanContext?.spanId).toBe(execute!.spanContext().spanId);
    expect(Handler.prototype.execute.name).toBe('execute');
  });

  it('marks a failure with the error type only and rethrows the error', async () => {
    memory.reset();
    await expect(new Handler().fail('31612345678')).rejects.toThrow(RangeError);
    const [span] = memory.getFinishedSpans();
    expect(span).toMatchObject({ name: 'sluice.test.fail', attributes: { 'error.type': 'RangeError' }, status: { code: SpanStatusCode.ERROR }, events: [] });
    expect(JSON.stringify(span!.attributes)).not.toContain('31612345678');
  });

  it('traces synchronous methods, and an attribute mapper that throws costs only its attributes', () => {
    memory.reset();
    expect(new Handler().add(2, 3)).toBe(5);
    expect(memory.getFinishedSpans().map((s) => [s.name, s.attributes])).toEqual([['sluice.test.sync', {}]]);
  });

  it('@OutsideTrace runs the method outside the caller\'s span', () => {
    const span = trace.getTracer('test').startSpan('request');
    const inside = context.with(trace.setSpan(context.active(), span), () => new Handler().wake());
    span.end();
    expect(inside).toBeUndefined();
  });

  it("@OutsideTrace leaves the caller's request too: background work it starts logs no request id", async () => {
    const span = trace.getTracer('test').startSpan('request');
    const later = await requestContext.run({ requestId: 'req_waker' }, () => context.with(trace.setSpan(context.active(), span), () => new Handler().wakeLater()));
    span.end();
    expect(later).toEqual({ requestId: undefined, spanId: undefined });
    // The store was there to leave: inside the request it is seen.
    expect(requestContext.run({ requestId: 'req_waker' }, () => requestContext.getStore()?.requestId)).toBe('req_waker');
  });
});
