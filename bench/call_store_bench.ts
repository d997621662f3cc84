/**
 * What keeping a record from a call's start costs in KV: 100 calls per
 * iteration on a KV file, written as before (one record at the end) and
 * as now (in progress at the start, one checkpoint, completed at the end),
 * and what each further checkpoint of 100 live calls costs. The per-call
 * figure is the iteration's time divided by 100.
 *
 * @module
 */

import { buildCallRecord } from "../src/records/call_record.ts";
import { CallStore, openKv } from "../src/records/call_store.ts";
import { makeSession } from "../tests/fakes/session.ts";

const CALLS = 100;
const dir = await Deno.makeTempDir();
const kv = await openKv(`${dir}/bench.kv`);
const store = new CallStore(kv, { batchMs: 0, instanceId: "bench" });

function sessions() {
  return Array.from(
    { length: CALLS },
    (_, i) => makeSession({ callId: `CA-${crypto.randomUUID()}`, framesIn: i }),
  );
}

Deno.bench("100 calls, record written at the end only", {
  group: "records",
  baseline: true,
}, async () => {
  const calls = sessions();
  await Promise.all(
    calls.map((session) =>
      store.save(buildCallRecord(session, "stop:callended"))
    ),
  );
});

Deno.bench(
  "100 calls, in progress at start, one checkpoint, completed at the end",
  {
    group: "records",
  },
  async () => {
    const calls = sessions();
    await Promise.all(calls.map((session) => store.open(session)));
    await store.checkpoint(calls);
    for (const session of calls) session.state = "stopped";
    await Promise.all(
      calls.map((session) =>
        store.save(buildCallRecord(session, "stop:callended"))
      ),
    );
  },
);

const live = sessions();
await Promise.all(live.map((session) => store.open(session)));

Deno.bench("100 live calls, a further checkpoint (counters only)", {
  group: "checkpoint",
}, async () => {
  for (const session of live) session.framesIn += 50;
  await store.checkpoint(live);
});

globalThis.addEventListener("unload", () => {
  kv.close();
  Deno.removeSync(dir, { recursive: true });
});
