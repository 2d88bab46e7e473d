import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AuditModule } from '../audit/audit.module.js';
import { ConsentModule } from '../consent/consent.module.js';
import { PolicyModule } from '../policy/policy.module.js';
import { SLUICE_CONFIG, type SluiceConfig } from '../platform/config/config.js';
import { CloudApiTransport } from './cloud-api/cloud-api-transport.js';
import { DeliveryRecords } from './delivery-records.js';
import { DeliveryWorker } from './delivery-worker.js';
import { ListSandboxMessagesHandler } from './list-sandbox-messages/list-sandbox-messages.query.js';
import { OutboxRepository } from './outbox.repository.js';
import { ReceiveInboundMessagesHandler } from './receive-inbound-messages/receive-inbound-messages.command.js';
import { RecordDeliveryStatusesHandler } from './record-delivery-statuses/record-delivery-statuses.command.js';
import { SandboxTransport } from './sandbox-transport.js';
import { SandboxController } from './sandbox.controller.js';
import { LocalSendPacer, SharedSendPacer } from './send-pacer.js';
import { AccountPause } from './account-pause.js';
import { ServiceWindows } from './service-windows.js';
import { WhatsAppUserIds } from './whatsapp-user-ids.js';
import { WakeOnShareDecidedHandler } from './wake-on-share-decided.handler.js';
import { InboundMessageLog } from './webhooks/inbound-message-log.js';
import { WhatsAppWebhookController } from './webhooks/whatsapp-webhook.controller.js';
import { WHATSAPP_TRANSPORT, type WhatsAppTransport } from './whatsapp-transport.js';

/** WHATSAPP_TRANSPORT picks the transport: the sandbox (default) records, the Cloud API client sends. */
function whatsAppTransport(config: SluiceConfig, dataSource: DataSource, sandbox: SandboxTransport): WhatsAppTransport {
  const api = config.whatsapp.cloudApi;
  if (config.whatsappTransport !== 'cloud-api' || !api) return sandbox;
  // Replicas share one PostgreSQL database, so they share its schedule; the embedded SQLite default is one process.
  const pacer = config.database.type === 'postgres' ? new SharedSendPacer(dataSource, api.phoneNumberId, api.sendRate) : new LocalSendPacer(api.sendRate);
  return new CloudApiTransport(api, pacer);
}

@Module({
  imports: [AuditModule, ConsentModule, PolicyModule],
  controllers: [SandboxController, WhatsAppWebhookController],
  providers: [
    OutboxRepository,
    DeliveryRecords,
    ServiceWindows,
    WhatsAppUserIds,
    AccountPause,
    InboundMessageLog,
    DeliveryWorker,
    SandboxTransport,
    { provide: WHATSAPP_TRANSPORT, inject: [SLUICE_CONFIG, DataSource, SandboxTransport], useFactory: whatsAppTransport },
    ListSandboxMessagesHandler,
    WakeOnShareDecidedHandler,
    ReceiveInboundMessagesHandler,
    RecordDeliveryStatusesHandler,
  ],
  exports: [DeliveryWorker],
})
export class DeliveryModule {}
