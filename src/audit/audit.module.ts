import { Module } from '@nestjs/common';
import { AuditLogService } from './audit-log.service.js';
import { AuditController } from './audit.controller.js';
import { SubjectKeyService } from './subject-keys.service.js';

@Module({
  controllers: [AuditController],
  providers: [AuditLogService, SubjectKeyService],
  exports: [AuditLogService, SubjectKeyService],
})
export class AuditModule {}
