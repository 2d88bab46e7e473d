import { Module } from '@nestjs/common';
import { AuditLogService } from './audit-log.service.js';
import { AuditSequencer } from './audit-sequencer.js';
import { AuditExportController } from './audit-export.controller.js';
import { AuditProofsController } from './audit-proofs.controller.js';
import { AuditController } from './audit.controller.js';
import { SubjectKeyService } from './subject-keys.service.js';

@Module({
  controllers: [AuditController, AuditProofsController, AuditExportController],
  providers: [AuditLogService, AuditSequencer, SubjectKeyService],
  exports: [AuditLogService, AuditSequencer, SubjectKeyService],
})
export class AuditModule {}
