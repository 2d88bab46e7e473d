import { Module } from '@nestjs/common';
import { AuditModule } from '../audit/audit.module.js';
import { ConsentModule } from '../consent/consent.module.js';
import { PolicyModule } from '../policy/policy.module.js';
import { AuditRetentionService } from './audit-retention.service.js';
import { EraseSubjectHandler } from './erase-subject/erase-subject.command.js';
import { GetSubjectReportHandler } from './get-subject-report/get-subject-report.query.js';
import { SubjectsController } from './subjects.controller.js';

/** The data subject's rights: access (Art. 15), erasure (Art. 17), and the audit retention that limits what is kept. */
@Module({
  imports: [AuditModule, ConsentModule, PolicyModule],
  controllers: [SubjectsController],
  providers: [GetSubjectReportHandler, EraseSubjectHandler, AuditRetentionService],
})
export class SubjectsModule {}
