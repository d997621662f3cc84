/**
 * Reading a call's record over HTTP as a client would, once the server has
 * written it: records are completed a moment after the call ends.
 *
 * @module
 */

import type { CallRecord } from "../../src/records/call_record.ts";

/** Options of {@linkcode completedRecord}. */
export interface CompletedRecordOptions {
  /** Headers for `GET /calls/:id`, e.g. an admin bearer token. */
  headers?: HeadersInit;
  /** How long to keep asking, in ms; 15 s by default. */
  timeoutMs?: number;
}

/**
 * The record of call `id` from `GET <base>/calls/<id>` once its `state` is
 * `completed`, asking again every 50 ms until then.
 *
 * @throws {Error} naming the call when no completed record came in time.
 * @example An echo call's record
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { createEchoBot } from "../../src/bots/echo.ts";
 * import { simulateCall } from "../../tools/simulator.ts";
 * import { startBotServer } from "./bot_server.ts";
 *
 * await using echo = await startBotServer(createEchoBot);
 * await simulateCall({
 *   url: `${echo.url}?call_id=CA-doc`,
 *   pcm: new Uint8Array(3200),
 *   sampleRate: 8000,
 *   realtime: false,
 *   waitForReplyMs: 0,
 * });
 * const record = await completedRecord(echo.base, "CA-doc");
 * assertEquals(record.ended.reason, "stop:callended");
 * ```
 */
export async function completedRecord(
  base: string,
  id: string,
  options: CompletedRecordOptions = {},
): Promise<CallRecord> {
  const deadline = performance.now() + (options.timeoutMs ?? 15_000);
  let last = "no answer";
  while (performance.now() < deadline) {
    const response = await fetch(`${base}/calls/${encodeURIComponent(id)}`, {
      headers: options.headers,
    });
    if (response.ok) {
      const record: CallRecord = await response.json();
      if (record.state === "completed") return record;
      last = `state ${record.state}`;
    } else {
      await response.body?.cancel();
      last = `HTTP ${response.status}`;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`No completed record for call ${id} (last: ${last})`);
}
