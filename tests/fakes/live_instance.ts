/**
 * One exovoice instance's share of the live-session directory, run as its own
 * process: opens the KV file given, publishes one live call, then answers
 * `list` on stdin with every instance's sessions as one JSON line, until
 * stdin closes, when it withdraws and exits.
 *
 * Usage: `deno run --unstable-kv live_instance.ts <kv path> <instance id> <call id>`
 *
 * @module
 */

import { LiveSessions } from "../../src/instances/live_sessions.ts";
import { openKv } from "../../src/records/call_store.ts";
import { makeSession } from "./session.ts";

const [path, instanceId, callId] = Deno.args;
const kv = await openKv(path);
const session = makeSession({ callId, connectedAt: Date.now() });
const live = new LiveSessions(kv, {
  instanceId,
  sessions: () => [session],
  heartbeatMs: 60_000,
});
live.start();
await live.publish();
const encoder = new TextEncoder();
const write = (line: string) => Deno.stdout.write(encoder.encode(`${line}\n`));
await write("ready");

let buffered = "";
for await (
  const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())
) {
  buffered += chunk;
  let newline;
  while ((newline = buffered.indexOf("\n")) !== -1) {
    const command = buffered.slice(0, newline).trim();
    buffered = buffered.slice(newline + 1);
    if (command === "list") await write(JSON.stringify(await live.listAll()));
  }
}
await live.stop();
kv.close();
