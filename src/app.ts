import 'reflect-metadata';
import { type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppModule } from './app.module.js';
import { ApiKeyService } from './platform/auth/api-key.service.js';
import type { SluiceConfig } from './platform/config/config.js';

/** Request bodies above this are refused with 413; inline media (data: URLs) are the big ones. */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;

const LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];

/** Builds the whole gateway; main.ts and the end-to-end tests both start it this way. */
export async function createApp(config: SluiceConfig, options: { logger?: false } = {}): Promise<NestFastifyApplication> {
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(config),
    new FastifyAdapter({ bodyLimit: MAX_BODY_BYTES, trustProxy: false }),
    {
      logger: options.logger === false ? false : LEVELS.slice(0, LEVELS.indexOf(config.logLevel) + 1),
      abortOnError: false,
      // WhatsApp's webhook signature covers the exact bytes received (request.rawBody).
      rawBody: true,
    },
  );
  // Not SIGHUP (Nest's default list has it): SIGHUP reloads the policies.
  app.enableShutdownHooks(['SIGTERM', 'SIGINT']);
  await app.init();
  await app.get(ApiKeyService).ensureStartupKey(config.bootstrapKey);
  return app;
}
