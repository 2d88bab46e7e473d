/**
 * The end-to-end benchmark's baseline: NestJS on Fastify with one `POST /v1/shares` route that
 * takes the same request (JSON body parsed, same body limit) and answers 201 with a JSON body of
 * RESPONSE_BYTES bytes, as long as sluice's answer, doing nothing else. Started as a child process
 * by bench/e2e.bench.ts, like the gateway, so each has its own event loop.
 */
import 'reflect-metadata';
import { Body, Controller, HttpCode, Module, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';

/** The share route's limit (SHARE_BODY_LIMIT in src/platform/http/body-limits.ts), not imported: keep the bare server free of sluice. */
const MAX_BODY_BYTES = 8 * 1024 * 1024;
const size = Number(process.env.RESPONSE_BYTES ?? 1000);
const skeleton = JSON.stringify({ id: 'shr_bare', padding: '' });
const response = { id: 'shr_bare', padding: 'x'.repeat(Math.max(0, size - skeleton.length)) };

@Controller('v1/shares')
class BareController {
  @Post()
  @HttpCode(201)
  share(@Body() _body: unknown): typeof response {
    return response;
  }
}

@Module({ controllers: [BareController] })
class BareModule {}

const app = await NestFactory.create<NestFastifyApplication>(BareModule, new FastifyAdapter({ bodyLimit: MAX_BODY_BYTES, trustProxy: false }), { logger: ['error', 'warn'] });
await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' });
