import { Module } from '@nestjs/common';
import { AuditModule } from '../audit/audit.module.js';
import { ConsentModule } from '../consent/consent.module.js';
import { PolicyModule } from '../policy/policy.module.js';
import { GetShareHandler } from './get-share/get-share.query.js';
import { RequestShareHandler } from './request-share/request-share.handler.js';
import { ShareRecorder } from './request-share/share-recorder.js';
import { SharesController } from './shares.controller.js';

@Module({
  imports: [AuditModule, ConsentModule, PolicyModule],
  controllers: [SharesController],
  providers: [RequestShareHandler, ShareRecorder, GetShareHandler],
})
export class SharesModule {}
