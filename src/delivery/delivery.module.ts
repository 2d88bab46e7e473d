import { Module } from '@nestjs/common';
import { AuditModule } from '../audit/audit.module.js';
import { ConsentModule } from '../consent/consent.module.js';
import { DeliveryWorker } from './delivery-worker.js';
import { ListSandboxMessagesHandler } from './list-sandbox-messages/list-sandbox-messages.query.js';
import { OutboxRepository } from './outbox.repository.js';
import { SandboxTransport } from './sandbox-transport.js';
import { SandboxController } from './sandbox.controller.js';
import { WakeOnShareDecidedHandler } from './wake-on-share-decided.handler.js';
import { WHATSAPP_TRANSPORT } from './whatsapp-transport.js';

@Module({
  imports: [AuditModule, ConsentModule],
  controllers: [SandboxController],
  providers: [
    OutboxRepository,
    DeliveryWorker,
    SandboxTransport,
    { provide: WHATSAPP_TRANSPORT, useExisting: SandboxTransport },
    ListSandboxMessagesHandler,
    WakeOnShareDecidedHandler,
  ],
  exports: [DeliveryWorker],
})
export class DeliveryModule {}
