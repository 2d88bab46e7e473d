import { Module } from '@nestjs/common';
import { AuditModule } from '../audit/audit.module.js';
import { PolicyModule } from '../policy/policy.module.js';
import { ConsentLedger } from './consent-ledger.js';
import { ConsentController } from './consent.controller.js';
import { GetSubjectConsentsHandler } from './get-subject-consents/get-subject-consents.query.js';
import { RecordConsentHandler } from './record-consent/record-consent.command.js';

@Module({
  imports: [AuditModule, PolicyModule],
  controllers: [ConsentController],
  providers: [ConsentLedger, RecordConsentHandler, GetSubjectConsentsHandler],
  exports: [ConsentLedger],
})
export class ConsentModule {}
