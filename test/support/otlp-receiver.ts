import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One export request as the receiver got it: `/v1/traces` or `/v1/metrics`, and its JSON body. */
export interface Received {
  path: string;
  text: string;
}

/**
 * An OTLP/HTTP receiver (http/json) on loopback: the gateway's exporters, pointed at it with
 * OTEL_EXPORTER_OTLP_ENDPOINT, send it every span and metric, which it keeps as sent.
 */
export async function startOtlpReceiver(): Promise<{ server: Server; url: string; received: Received[] }> {
  const received: Received[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ path: request.url ?? '', text: Buffer.concat(chunks).toString('utf8') });
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

type OtlpValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean; arrayValue?: { values?: OtlpValue[] } };
type OtlpAttributes = { key: string; value: OtlpValue }[] | undefined;

export interface CapturedSpan {
  scope: string;
  name: string;
  traceId: string;
  attributes: Record<string, unknown>;
}

export interface CapturedPoint {
  metric: string;
  attributes: Record<string, unknown>;
}

const valueOf = (value: OtlpValue): unknown =>
  value.arrayValue ? (value.arrayValue.values ?? []).map(valueOf) : (value.stringValue ?? value.intValue ?? value.doubleValue ?? value.boolValue);
const attributesOf = (attributes: OtlpAttributes) => Object.fromEntries((attributes ?? []).map(({ key, value }) => [key, valueOf(value)]));

export function spansIn(received: Received[]): CapturedSpan[] {
  return received
    .filter((r) => r.path === '/v1/traces')
    .flatMap((r) => (JSON.parse(r.text) as { resourceSpans: { scopeSpans: { scope: { name: string }; spans: { name: string; traceId: string; attributes: OtlpAttributes }[] }[] }[] }).resourceSpans)
    .flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => ({ scope: ss.scope.name, name: s.name, traceId: s.traceId, attributes: attributesOf(s.attributes) }))));
}

export function pointsIn(received: Received[]): CapturedPoint[] {
  type Points = { dataPoints?: { attributes: OtlpAttributes }[] };
  type Metric = { name: string; sum?: Points; gauge?: Points; histogram?: Points };
  return received
    .filter((r) => r.path === '/v1/metrics')
    .flatMap((r) => (JSON.parse(r.text) as { resourceMetrics: { scopeMetrics: { metrics: Metric[] }[] }[] }).resourceMetrics)
    .flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics))
    .flatMap((m) => (m.sum ?? m.gauge ?? m.histogram)?.dataPoints?.map((p) => ({ metric: m.name, attributes: attributesOf(p.attributes) })) ?? []);
}
