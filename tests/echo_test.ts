/**
 * The echo loses nothing: caller audio that arrives faster than real time
 * (a network hiccup delivering seconds at once) is all played back, paced
 * at real time, up to the echo's backlog bound; beyond it the oldest audio is
 * dropped, counted and logged once.
 */
import { assert, assertEquals, assertGreater } from "@std/assert";
import { bytesForMs } from "../src/audio/pcm.ts";
import { createEchoBot, ECHO_MAX_BACKLOG_MS } from "../src/bots/echo.ts";
import { Call, type CallSettings } from "../src/call/call.ts";
import { SessionRegistry } from "../src/call/registry.ts";
import { createSocketPair } from "../src/call/socket.ts";
import { FakeClock } from "./fakes/clock.ts";
import { closed, connect, serve, until } from "./fakes/sockets.ts";
import { captureLogs } from "./fakes/log_capture.ts";

const settings: CallSettings = {
  chunkBytes: 3200,
  leadMs: 400,
  maxBufferedBytes: 65536,
  maxFrameBytes: 64 * 1024,
  maxPreStartBytes: 8000,
};

interface Frame {
  event: string;
  media?: { payload: string };
}

/** Caller audio that is different in every byte position, so any loss or reordering shows. */
function callerAudio(bytes: number): Uint8Array {
  return Uint8Array.from(
    { length: bytes },
    (_, i) => (i * 31 + (i >> 8)) & 0xff,
  );
}

function startFrame(sampleRate = 8000) {
  return {
    event: "start",
    stream_sid: "S1",
    start: {
      stream_sid: "S1",
      call_sid: "CA1",
      media_format: {
        encoding: "audio/x-raw",
        sample_rate: String(sampleRate),
      },
    },
  };
}

function mediaFrame(payload: Uint8Array) {
  return {
    event: "media",
    stream_sid: "S1",
    media: { payload: payload.toBase64() },
  };
}

/** An echo call over an in-memory pair on a fake clock. */
function echoCall() {
  const clock = new FakeClock();
  const registry = new SessionRegistry();
  const [server, exotel] = createSocketPair();
  const echoed: Uint8Array[] = [];
  exotel.listen({
    message: (data) => {
      const frame: Frame = JSON.parse(data as string);
      if (frame.event === "media") {
        echoed.push(Uint8Array.fromBase64(frame.media!.payload));
      }
    },
    close: () => {},
  });
  const call = new Call({
    socket: server,
    clock,
    registry,
    settings,
    botName: "echo",
    createBot: createEchoBot,
    request: { sampleRate: 8000, remoteAddress: "127.0.0.1" },
  });
  const send = (frame: unknown) => exotel.send(JSON.stringify(frame));
  const echoedBytes = () =>
    echoed.reduce((sum, chunk) => sum + chunk.length, 0);
  const echoedAudio = () => {
    const all = new Uint8Array(echoedBytes());
    let at = 0;
    for (const chunk of echoed) {
      all.set(chunk, at);
      at += chunk.length;
    }
    return all;
  };
  return { clock, call, send, echoed, echoedBytes, echoedAudio };
}

Deno.test("the echo plays a 5 s burst delivered at once back in full, byte for byte, paced at real time", async () => {
  const { clock, call, send, echoedBytes, echoedAudio } = echoCall();
  send(startFrame());
  const burst = callerAudio(bytesForMs(5000, 8000));
  // 5 s of 100 ms frames, all delivered in one go.
  for (let at = 0; at < burst.length; at += 1600) {
    send(mediaFrame(burst.subarray(at, at + 1600)));
  }
  await clock.advance(0);
  // Paced, not dumped: only the lead is queued at Exotel at first.
  assert(
    echoedBytes() < bytesForMs(1000, 8000),
    `sent ${echoedBytes()} bytes at once`,
  );
  await clock.advance(6000);
  assertEquals(echoedBytes(), burst.length);
  assertEquals(echoedAudio(), burst);
  assertEquals(call.session.playout.droppedBytes, 0);
  call.end("test");
});

Deno.test("the echo keeps 30 s of backlog; beyond it drops the oldest audio, counts it and logs once", async () => {
  await using logs = await captureLogs();
  const { clock, call, send, echoedAudio } = echoCall();
  send(startFrame());
  const bound = bytesForMs(ECHO_MAX_BACKLOG_MS, 8000);
  const burst = callerAudio(bytesForMs(ECHO_MAX_BACKLOG_MS + 5000, 8000));
  for (let at = 0; at < burst.length; at += 3200) {
    send(mediaFrame(burst.subarray(at, at + 3200)));
  }
  await clock.advance(ECHO_MAX_BACKLOG_MS + 10_000);
  const dropped = call.session.playout.droppedBytes;
  const echoed = echoedAudio();
  assertGreater(dropped, 0);
  // Nothing lost without being counted, and never more than the excess.
  assertEquals(echoed.length + dropped, burst.length);
  assert(dropped <= burst.length - bound, `dropped ${dropped}`);
  // The newest audio is what plays: the tail is intact, in order.
  assertEquals(echoed.subarray(-bound), burst.subarray(-bound));
  const warnings = logs.lines("warning");
  const drops = warnings.filter((line) => line.includes("Bot audio dropped"));
  assertEquals(drops.length, 1, warnings.join("\n"));
  call.end("test");
});

Deno.test("through the server, a 5 s burst comes back in full and a 35 s one shows its loss in /metrics", async () => {
  await using server = await serve();
  const base = `127.0.0.1:${server.addr.port}`;
  const burst = async (ms: number) => {
    const ws = await connect(`ws://${base}/voicebot/ws?sample-rate=8000`);
    assert(ws instanceof WebSocket, String(ws));
    const audio = callerAudio(bytesForMs(ms, 8000));
    const echoed: Uint8Array[] = [];
    let echoedBytes = 0;
    ws.onmessage = (event) => {
      const frame: Frame = JSON.parse(event.data);
      if (frame.event !== "media") return;
      const chunk = Uint8Array.fromBase64(frame.media!.payload);
      echoed.push(chunk);
      echoedBytes += chunk.length;
    };
    ws.send(JSON.stringify({ event: "connected" }));
    ws.send(JSON.stringify(startFrame()));
    for (let at = 0; at < audio.length; at += 3200) {
      ws.send(JSON.stringify(mediaFrame(audio.subarray(at, at + 3200))));
    }
    return { ws, audio, echoed, echoedBytes: () => echoedBytes };
  };

  const short = await burst(5000);
  await until(() => short.echoedBytes() >= short.audio.length);
  const done = closed(short.ws);
  short.ws.close();
  await done;
  const echoed = new Uint8Array(short.echoedBytes());
  let at = 0;
  for (const chunk of short.echoed) {
    echoed.set(chunk, at);
    at += chunk.length;
  }
  assertEquals(echoed, short.audio);

  // Past the bound the call goes on; what it dropped is counted.
  const long = await burst(ECHO_MAX_BACKLOG_MS + 5000);
  const session = () => [...server.registry.values()][0];
  // Every frame in (so no more drops are coming) before reading the count.
  await until(() => session()?.bytesIn === long.audio.length);
  const dropped = session().playout.droppedBytes;
  assertGreater(dropped, 0);
  const metrics = await (await fetch(`http://${base}/metrics`)).text();
  const line = metrics.split("\n").find((row) =>
    row.startsWith("exovoice_playout_dropped_bytes_total ")
  );
  assertEquals(line, `exovoice_playout_dropped_bytes_total ${dropped}`);
  const closing = closed(long.ws);
  long.ws.close();
  await closing;
  await until(() => server.registry.size === 0);
});
