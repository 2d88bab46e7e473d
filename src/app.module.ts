import { type DynamicModule, Global, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_PIPE } from '@nestjs/core';
import { CqrsModule } from '@nestjs/cqrs';
import { AuditModule } from './audit/audit.module.js';
import { ConsentModule } from './consent/consent.module.js';
import { DeliveryModule } from './delivery/delivery.module.js';
import { ApiKeyGuard } from './platform/auth/api-key.guard.js';
import { ApiKeyService } from './platform/auth/api-key.service.js';
import { RequestAuthenticator } from './platform/auth/request-authenticator.js';
import { SLUICE_CONFIG, type SluiceConfig } from './platform/config/config.js';
import { KEY_MATERIAL, loadKeyMaterial } from './platform/crypto/key-material.js';
import { DatabaseModule } from './platform/database/database.module.js';
import { HealthController } from './platform/health/health.controller.js';
import { ObservabilityModule } from './platform/observability/observability.module.js';
import { ProblemDetailsFilter } from './platform/http/problem.js';
import { DtoValidationPipe } from './platform/http/validation.js';
import { PolicyModule } from './policy/policy.module.js';
import { SharesModule } from './shares/shares.module.js';
import { SubjectsModule } from './subjects/subjects.module.js';

@Global()
@Module({})
class ConfigModule {
  static forRoot(config: SluiceConfig): DynamicModule {
    return {
      module: ConfigModule,
      providers: [
        { provide: SLUICE_CONFIG, useValue: config },
        { provide: KEY_MATERIAL, useFactory: () => loadKeyMaterial(config) },
        ApiKeyService,
        RequestAuthenticator,
      ],
      exports: [SLUICE_CONFIG, KEY_MATERIAL, ApiKeyService, RequestAuthenticator],
    };
  }
}

@Module({})
export class AppModule {
  static forRoot(config: SluiceConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        DatabaseModule,
        CqrsModule.forRoot(),
        AuditModule,
        PolicyModule,
        ConsentModule,
        SharesModule,
        DeliveryModule,
        SubjectsModule,
        ObservabilityModule,
      ],
      controllers: [HealthController],
      providers: [
        { provide: APP_GUARD, useClass: ApiKeyGuard },
        { provide: APP_PIPE, useClass: DtoValidationPipe },
        { provide: APP_FILTER, useClass: ProblemDetailsFilter },
      ],
    };
  }
}
