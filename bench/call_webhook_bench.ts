/**
 * What the call webhook adds to a call's end: its delivery rides in the
 * record's own KV commit. Each iteration writes 25 finished calls' records
 * (one batch) to a KV file, with and without the queued delivery; the
 * signing of one record's body is measured apart.
 *
 * ```sh
 * deno bench --frozen --allow-read --allow-write bench/call_webhook_bench.ts
 * ```
 *
 * @module
 */

import { buildCallRecord } from "../src/records/call_record.ts";
import { CallStore } from "../src/records/call_store.ts";
import { DeliveryQueue } from "../src/webhooks/delivery_queue.ts";
import { signWebhookBody } from "../src/webhooks/signature.ts";
import { makeSession } from "../tests/fakes/session.ts";

const BATCH = 25;
const dir = await Deno.makeTempDir();
const kv = await Deno.openKv(`${dir}/bench.kv`);
const store = new CallStore(kv, { batchMs: 0 });
const queue = new DeliveryQueue(kv);
let n = 0;

function records() {
  return Array.from({ length: BATCH }, () =>
    buildCallRecord(
      makeSession({
        id: `bench-${n++}`,
        callId: `CA${n}`,
        from: "+919800000001",
      }),
      "stop:callended",
    ));
}

Deno.bench(
  "25 call records written",
  { group: "call end", baseline: true },
  async () => {
    await Promise.all(records().map((record) => store.save(record)));
  },
);

Deno.bench("25 call records written, each queuing its webhook", {
  group: "call end",
}, async () => {
  await Promise.all(
    records().map((record) =>
      store.save(record, {
        onCommit: (operation) =>
          queue.add(operation, record.id, { now: Date.now() }),
      })
    ),
  );
});

const body = JSON.stringify({
  ...buildCallRecord(makeSession({ id: "sign" }), "stop:callended"),
  transcript: Array.from({ length: 40 }, (_, i) => ({
    role: i % 2 ? "bot" : "caller",
    text:
      "A sentence of about the length people say on the phone, give or take.",
    atMs: i * 3000,
  })),
});

Deno.bench(
  `signing a ${Math.round(body.length / 1024)} KiB record`,
  async () => {
    await signWebhookBody(body, "a-secret-of-reasonable-length");
  },
);

globalThis.addEventListener("unload", () => {
  kv.close();
  Deno.removeSync(dir, { recursive: true });
});
