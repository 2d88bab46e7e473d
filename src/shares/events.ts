/** Published after a share's transaction commits; only a nudge, nothing relies on it being delivered. */
export class ShareDecidedEvent {
  constructor(readonly shareId: string, readonly queuedMessages: number) {}
}
