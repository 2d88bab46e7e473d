import { Module } from '@nestjs/common';
import { AuditModule } from '../audit/audit.module.js';
import { PolicyActivationService } from './policy-activation.service.js';
import { PolicyRegistry } from './policy-registry.js';

@Module({
  imports: [AuditModule],
  providers: [PolicyRegistry, PolicyActivationService],
  exports: [PolicyRegistry],
})
export class PolicyModule {}
