/**
 * `POST /calls/:id/webhook` queues the call's record for the call webhook
 * again: for a receiver that lost it, or was down past the retries.
 *
 * @module
 */

import { HttpError, jsonResponse } from "../http/json.ts";
import type { CallStore } from "../records/call_store.ts";
import type { CallWebhook } from "../webhooks/call_webhook.ts";

/** What {@linkcode handleRedeliver} works with. */
export interface RedeliverDeps {
  /** Call records. */
  store: CallStore;
  /** The deliverer; undefined when `CALL_WEBHOOK_URL` is unset. */
  webhook?: CallWebhook;
}

/**
 * Queues a delivery of the record whose session id, or else CallSid, is `id`
 * and answers `202 {"recordId", "queued": true}`.
 *
 * @throws {HttpError} 404 for no such record, 503 with no call webhook set.
 */
export async function handleRedeliver(
  _request: Request,
  id: string,
  deps: RedeliverDeps,
): Promise<Response> {
  if (!deps.webhook) {
    throw new HttpError(503, {
      code: "webhook_not_configured",
      message:
        "No call webhook to deliver to: set CALL_WEBHOOK_URL and CALL_WEBHOOK_SECRET",
    });
  }
  const call = await deps.store.get(id);
  if (call === undefined) {
    throw new HttpError(404, {
      code: "call_not_found",
      message: `No call record "${id}"`,
    });
  }
  await deps.webhook.redeliver(call.id);
  return jsonResponse({ recordId: call.id, queued: true }, 202);
}
