/** Call records, metrics, status callbacks, recordings and many instances, through the real server. */
import { assert, assertEquals, assertExists } from "@std/assert";
import { decodeWav } from "../src/audio/wav.ts";
import { simulateCall } from "../tools/simulator.ts";
import { parsePrometheusText, sampleValue } from "./fakes/prometheus_parser.ts";
import { closed, connect, serve, until } from "./fakes/sockets.ts";
import { startServerProcess } from "./fakes/server_process.ts";

const ADMIN = { authorization: "Bearer adm" };
const tone = decodeWav(
  await Deno.readFile(
    new URL("./fixtures/audio/tone_440hz_1s_8000.wav", import.meta.url),
  ),
);

async function placeCall(port: number, callSid: string) {
  return await simulateCall({
    url: `ws://127.0.0.1:${port}/voicebot/ws?call_id=${callSid}`,
    pcm: tone.pcm,
    sampleRate: 8000,
    callSid,
    from: "+919876543210",
    to: "08047491899",
    realtime: false,
    waitForReplyMs: 200,
    maxWaitMs: 1000,
    dtmf: [{ atMs: 100, digit: "7" }],
  });
}

async function getJson(url: string) {
  const response = await fetch(url, { headers: ADMIN });
  assertEquals(response.status, 200, url);
  return await response.json();
}

/** Records are written just after a call ends: asks again until `ready` holds. */
async function eventually(
  url: string,
  ready: (body: Record<string, unknown>) => boolean,
) {
  while (true) {
    const response = await fetch(url, { headers: ADMIN });
    const body = await response.json();
    if (response.ok && ready(body)) return body;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function status(url: string): Promise<number> {
  const response = await fetch(url);
  await response.text();
  return response.status;
}

Deno.test("a finished call is in /calls, newest first, and readable by id", async () => {
  await using server = await serve({ ADMIN_TOKEN: "adm" });
  const base = `http://127.0.0.1:${server.addr.port}`;
  /** Wall-clock time just before each call was placed and just after it ended. */
  const windows = new Map<string, { before: number; after: number }>();
  for (const sid of ["CA-first", "CA-second"]) {
    const before = Date.now();
    assert((await placeCall(server.addr.port, sid)).connected);
    await until(() => server.registry.size === 0);
    windows.set(sid, { before, after: Date.now() });
  }
  const list = await eventually(`${base}/calls`, (body) => body.count === 2);
  assertEquals(list.calls.map((call: { callId: string }) => call.callId), [
    "CA-second",
    "CA-first",
  ]);
  const record = await eventually(`${base}/calls/CA-first`, () => true);
  assertEquals(record.from, "+919876543210");
  assertEquals(record.to, "08047491899");
  assertEquals(record.dtmfDigits, "7");
  assertEquals(record.ended.reason, "stop:callended");
  // The record's times are the call's: inside the window the test saw it
  // live in, and its duration is exactly their difference.
  const window = windows.get("CA-first")!;
  const startedAt = Date.parse(record.startedAt);
  const endedAt = Date.parse(record.endedAt);
  assert(startedAt >= window.before, `${record.startedAt} after the dial`);
  assert(endedAt <= window.after, `${record.endedAt} before the hang-up`);
  assert(startedAt <= endedAt);
  assertEquals(record.durationMs, endedAt - startedAt);
  assert(record.counters.bytesIn >= tone.pcm.length);
  const page = await getJson(`${base}/calls?limit=1`);
  assertEquals(page.count, 1);
  assertExists(page.next);
  assertEquals(
    await status(`${base}/calls`),
    401,
    "records are admin-only",
  );
});

Deno.test("an Exotel status callback merges into the call record, and a retry changes nothing", async () => {
  await using server = await serve({});
  const base = `http://127.0.0.1:${server.addr.port}`;
  await placeCall(server.addr.port, "CA-status");
  await until(() => server.registry.size === 0);
  const form = new URLSearchParams({
    CallSid: "CA-status",
    Status: "completed",
    DateUpdated: "2026-11-24 10:00:00",
    RecordingUrl: "https://recordings.exotel.com/CA-status.mp3",
    ConversationDuration: "42",
  });
  for (let attempt = 0; attempt < 2; attempt++) {
    const response = await fetch(`${base}/api/v1/exotel/status`, {
      method: "POST",
      body: form,
    });
    assertEquals(response.status, 200);
    await response.body?.cancel();
  }
  const record = await eventually(
    `${base}/calls/CA-status`,
    (body) => body.exotel !== undefined,
  );
  assertEquals(record.exotel.status, "completed");
  assertEquals(
    record.exotel.recordingUrl,
    "https://recordings.exotel.com/CA-status.mp3",
  );
  assertEquals(record.exotel.conversationDuration, 42);
});

Deno.test("/metrics parses as Prometheus text and counts calls, frames and auth failures", async () => {
  await using server = await serve({
    ADMIN_TOKEN: "adm",
    EXOTEL_WS_TOKEN: "tok",
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  const refused = await connect(
    `ws://127.0.0.1:${server.addr.port}/voicebot/ws`,
  );
  assertEquals(typeof refused, "string");
  const ws = await connect(`ws://127.0.0.1:${server.addr.port}/voicebot/ws`, {
    authorization: "Bearer tok",
  });
  assert(ws instanceof WebSocket);
  ws.send(
    JSON.stringify({
      event: "start",
      stream_sid: "S",
      start: { call_sid: "CA-m" },
    }),
  );
  ws.send(
    JSON.stringify({
      event: "media",
      media: { payload: new Uint8Array(3200).toBase64() },
    }),
  );
  ws.send("{broken");
  await until(() =>
    server.registry.size === 1 &&
    [...server.registry.values()][0].framesIn === 3
  );
  const live = parsePrometheusText(
    await (await fetch(`${base}/metrics`, { headers: ADMIN })).text(),
  );
  assertEquals(
    sampleValue(live, "exovoice_live_calls", { state: "started" }),
    1,
  );
  const code = closed(ws);
  ws.send(JSON.stringify({ event: "stop", stop: { reason: "callended" } }));
  await code;
  await until(() => server.registry.size === 0);
  const response = await fetch(`${base}/metrics`, { headers: ADMIN });
  assertEquals(
    response.headers.get("content-type"),
    "text/plain; version=0.0.4; charset=utf-8",
  );
  const metrics = parsePrometheusText(await response.text());
  assertEquals(
    sampleValue(metrics, "exovoice_live_calls", { state: "started" }),
    0,
  );
  assertEquals(sampleValue(metrics, "exovoice_calls_started_total"), 1);
  assertEquals(
    sampleValue(metrics, "exovoice_auth_failures_total", {
      endpoint: "voicebot",
    }),
    1,
  );
  const badFrames = metrics.get("exovoice_bad_frames_total")!.samples;
  assert(
    badFrames.some((sample) =>
      sample.labels.kind === "invalid_json" && sample.value === 1
    ),
  );
  assertEquals(
    await status(`${base}/metrics`),
    401,
    "metrics are admin-only",
  );
});

Deno.test("with RECORDINGS_DIR each call is saved as a two-channel WAV named in its record", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using server = await serve({ RECORDINGS_DIR: dir });
    const base = `http://127.0.0.1:${server.addr.port}`;
    await placeCall(server.addr.port, "CA-rec");
    await until(() => server.registry.size === 0);
    const record = await eventually(
      `${base}/calls/CA-rec`,
      (body) => body.recording !== undefined,
    );
    const wav = await Deno.readFile(record.recording.path);
    const view = new DataView(wav.buffer);
    assertEquals(view.getUint16(22, true), 2, "two channels");
    assertEquals(view.getUint32(24, true), 8000);
    assert(record.recording.durationMs >= 1000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("two server processes sharing one KV file list each other's live calls", async () => {
  const dir = await Deno.makeTempDir();
  const kvPath = `${dir}/shared.kv`;
  const instances = ["vm-a", "vm-b"].map((id) =>
    startServerProcess({ KV_PATH: kvPath, INSTANCE_ID: id, ADMIN_TOKEN: "adm" })
  );
  try {
    const ports = await Promise.all(instances.map((instance) => instance.port));
    const sockets = await Promise.all(ports.map(async (port, i) => {
      const ws = await connect(
        `ws://127.0.0.1:${port}/voicebot/ws?call_id=CA-${i}`,
      ) as WebSocket;
      ws.send(
        JSON.stringify({
          event: "start",
          stream_sid: `S${i}`,
          start: { call_sid: `CA-${i}` },
        }),
      );
      return ws;
    }));
    let all = await getJson(
      `http://127.0.0.1:${ports[0]}/voicebot/sessions?scope=all`,
    );
    while (all.total < 2) {
      all = await getJson(
        `http://127.0.0.1:${ports[0]}/voicebot/sessions?scope=all`,
      );
    }
    const seen = all.sessions.map((
      session: { callId: string; instanceId: string },
    ) => `${session.callId}@${session.instanceId}`);
    assertEquals(seen.sort(), ["CA-0@vm-a", "CA-1@vm-b"]);
    const local = await getJson(
      `http://127.0.0.1:${ports[0]}/voicebot/sessions`,
    );
    assertEquals(local.total, 1, "without scope=all only this instance's");
    await Promise.all(sockets.map((ws) => {
      const done = closed(ws);
      ws.close();
      return done;
    }));
  } finally {
    for (const instance of instances) await instance.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
