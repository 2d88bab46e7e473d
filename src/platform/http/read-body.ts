import { errorCodes, type FastifyReply } from 'fastify';
import { Readable } from 'node:stream';

/**
 * A request's whole body, read in a preParsing hook so that it can be checked before any parser
 * sees it; or the route's 413 as soon as the body is known to be over `limit` (by Content-Length
 * or as it arrives): the rest is then not read, and the connection closes after the answer.
 * Errors surface here, in the hook, never later on a stream nobody listens to.
 */
export async function readBodyWithin(payload: NodeJS.ReadableStream, limit: number, declaredLength: number, reply: FastifyReply): Promise<Buffer> {
  const tooLarge = () => {
    void reply.header('connection', 'close');
    return new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE();
  };
  if (declaredLength > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of payload) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      length += bytes.length;
      if (length > limit) throw tooLarge();
      chunks.push(bytes);
    }
  } catch (error) {
    // A body the client broke off (or sent malformed chunks of) is its fault, a 400 as Fastify's
    // own reader makes it, not a server fault.
    if (((error as { statusCode?: number }).statusCode ?? 0) >= 400) throw error;
    throw Object.assign(new Error('The request body did not arrive in full'), { statusCode: 400 });
  }
  return Buffer.concat(chunks, length);
}

/**
 * Whether a request carries a body to read: one announced by Content-Length, or sent in chunks.
 * Requests without either (a GET) have nothing to read.
 */
export function contentLengthOf(headers: { 'content-length'?: string; 'transfer-encoding'?: string }): number | 'chunked' | undefined {
  if (headers['content-length'] !== undefined) return Number(headers['content-length']);
  return headers['transfer-encoding'] !== undefined ? 'chunked' : undefined;
}

/** The bytes as a stream again, for the parser; Fastify compares what it receives with Content-Length. */
export function bodyStream(body: Buffer): Readable {
  return Object.assign(Readable.from([body]), { receivedEncodedLength: body.length });
}
