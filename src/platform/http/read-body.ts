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
  for await (const chunk of payload) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    length += bytes.length;
    if (length > limit) throw tooLarge();
    chunks.push(bytes);
  }
  return Buffer.concat(chunks, length);
}

/** The bytes as a stream again, for the parser; Fastify compares what it receives with Content-Length. */
export function bodyStream(body: Buffer): Readable {
  return Object.assign(Readable.from([body]), { receivedEncodedLength: body.length });
}
