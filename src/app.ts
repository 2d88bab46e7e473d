import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppModule } from './app.module.js';
import { ApiKeyService } from './platform/auth/api-key.service.js';
import type { SluiceConfig } from './platform/config/config.js';
import { answerReadsWhenDurable } from './platform/database/answer-when-durable.js';
import { TransactionRunner } from './platform/database/transaction-runner.js';
import { closeConnectionsOnShutdown } from './platform/http/close-connections-on-shutdown.js';
import { configureHttp, fastifyOptions } from './platform/http/http-setup.js';
import { fastifyLogging, instrumentRequests } from './platform/observability/http-telemetry.js';
import { createLogger, NestPinoLogger } from './platform/observability/logger.js';

/**
 * Builds the whole gateway; main.ts and the end-to-end tests both start it this way. Signals are
 * main.ts's to handle (platform/shutdown/process-shutdown.ts), not Nest's.
 */
export async function createApp(config: SluiceConfig, options: { logger?: false } = {}): Promise<NestFastifyApplication> {
  // One pino logger (JSON lines) for Nest and Fastify: see platform/observability/logger.ts.
  const logger = createLogger(options.logger === false ? 'silent' : config.logLevel);
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(config),
    new FastifyAdapter({ ...fastifyOptions(config), ...fastifyLogging(logger) }),
    {
      logger: new NestPinoLogger(logger),
      abortOnError: false,
      // JSON only, parsed by Fastify (see acceptJsonBodiesOnly): no form parser of Nest's.
      bodyParser: false,
    },
  );
  instrumentRequests(app.getHttpAdapter().getInstance());
  closeConnectionsOnShutdown(app.getHttpAdapter().getInstance(), config.shutdownGraceMs);
  answerReadsWhenDurable(app.getHttpAdapter().getInstance(), app.get(TransactionRunner));
  await configureHttp(app, config);
  await app.init();
  const apiKeys = app.get(ApiKeyService);
  await apiKeys.ensureStartupKey(config.bootstrapKey);
  await apiKeys.rememberStoredKeys();
  return app;
}
