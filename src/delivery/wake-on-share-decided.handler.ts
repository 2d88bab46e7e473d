import { Inject } from '@nestjs/common';
import { EventsHandler, type IEventHandler } from '@nestjs/cqrs';
import { ShareDecidedEvent } from '../shares/events.js';
import { DeliveryWorker } from './delivery-worker.js';

/** Starts a delivery pass right after a share with queued messages commits; polling covers the rest. */
@EventsHandler(ShareDecidedEvent)
export class WakeOnShareDecidedHandler implements IEventHandler<ShareDecidedEvent> {
  constructor(@Inject(DeliveryWorker) private readonly worker: DeliveryWorker) {}

  handle(event: ShareDecidedEvent): void {
    if (event.queuedMessages > 0) this.worker.wake();
  }
}
