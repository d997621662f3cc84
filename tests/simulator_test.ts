import {
  assert,
  assertEquals,
  assertExists,
  assertGreater,
  assertMatch,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import type { SampleRate } from "../src/audio/pcm.ts";
import { decodeWav, encodeWav } from "../src/audio/wav.ts";
import { decodeMulaw, encodeMulaw } from "../src/audio/mulaw.ts";
import {
  simulateCall,
  type SimulateCallOptions,
  SimulatorOptionError,
} from "../tools/simulator.ts";
import { parseSimulateArgs, UsageError } from "../tools/simulate.ts";
import { until } from "./fakes/agent_call.ts";
import { FakeClock } from "./fakes/clock.ts";
import { concat } from "@std/bytes";

type Frame = Record<string, unknown>;

const ROOT = new URL("../", import.meta.url);
const TONE_PATH = "tests/fixtures/audio/tone_440hz_1s_8000.wav";
const TONE = decodeWav(await Deno.readFile(new URL(TONE_PATH, ROOT))).pcm;

/** One call as the fake bot sees it: the simulator's frames, parsed. */
class BotCall {
  readonly url: URL;
  readonly headers: Headers;
  readonly socket: WebSocket;
  readonly frames: Frame[] = [];
  readonly closed: Promise<void>;
  streamSid = "";
  lastTimestamp = -1;

  constructor(socket: WebSocket, request: Request) {
    this.socket = socket;
    this.url = new URL(request.url);
    this.headers = request.headers;
    this.closed = new Promise((resolve) => {
      socket.onclose = () => resolve();
    });
  }

  record(frame: Frame): void {
    this.frames.push(frame);
    if (frame.event === "start") this.streamSid = String(frame.stream_sid);
    if (frame.event === "media") {
      this.lastTimestamp = Number(field(frame, "media", "timestamp"));
    }
  }

  send(frame: Frame | string | Uint8Array): void {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    this.socket.send(
      typeof frame === "string" || frame instanceof Uint8Array
        ? frame
        : JSON.stringify(frame),
    );
  }

  media(pcm: Uint8Array, streamSid: string | null = this.streamSid): void {
    this.send({
      event: "media",
      ...streamSid === null ? {} : { stream_sid: streamSid },
      media: { payload: pcm.toBase64() },
    });
  }

  mark(name: string): void {
    this.send({ event: "mark", stream_sid: this.streamSid, mark: { name } });
  }

  clear(): void {
    this.send({ event: "clear", stream_sid: this.streamSid });
  }

  events(name: string): Frame[] {
    return this.frames.filter((frame) => frame.event === name);
  }
}

interface FakeBot {
  url: string;
  calls: BotCall[];
  close(): Promise<void>;
}

/** A bot server speaking Exotel's wire format; `onFrame` scripts its side. */
function startBot(
  onFrame: (call: BotCall, frame: Frame) => void,
  options: { authorize?: (request: Request) => boolean } = {},
): FakeBot {
  const calls: BotCall[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      if (options.authorize && !options.authorize(request)) {
        return new Response("Unauthorized", { status: 401 });
      }
      const { socket, response } = Deno.upgradeWebSocket(request);
      const call = new BotCall(socket, request);
      calls.push(call);
      socket.onmessage = (event) => {
        const frame = JSON.parse(event.data);
        call.record(frame);
        onFrame(call, frame);
      };
      return response;
    },
  );
  return {
    url: `ws://127.0.0.1:${server.addr.port}/voicebot/ws`,
    calls,
    async close() {
      await Promise.all(calls.map((call) => call.closed));
      await server.shutdown();
    },
  };
}

function field(frame: Frame, ...path: string[]): unknown {
  let value: unknown = frame;
  for (const key of path) {
    value = typeof value === "object" && value !== null
      ? (value as Record<string, unknown>)[key]
      : undefined;
  }
  return value;
}

function payloadOf(frame: Frame): Uint8Array {
  return Uint8Array.fromBase64(String(field(frame, "media", "payload")));
}

function isSilent(pcm: Uint8Array): boolean {
  return pcm.every((byte) => byte === 0);
}

function isFirstMedia(frame: Frame): boolean {
  return frame.event === "media" && field(frame, "media", "chunk") === "1";
}

/** A bot that echoes the caller's non-silent audio in 3200-byte chunks and marks its end. */
function echoBot(): (call: BotCall, frame: Frame) => void {
  const buffer: number[] = [];
  let spoke = false;
  let marked = false;
  return (call, frame) => {
    if (frame.event !== "media") return;
    const pcm = payloadOf(frame);
    if (!isSilent(pcm)) {
      buffer.push(...pcm);
      while (buffer.length >= 3200) {
        call.media(Uint8Array.from(buffer.splice(0, 3200)));
        spoke = true;
      }
      return;
    }
    if (!spoke || marked) return;
    if (buffer.length > 0) {
      const last = new Uint8Array(Math.ceil(buffer.length / 320) * 320);
      last.set(buffer.splice(0));
      call.media(last);
    }
    call.mark("reply");
    marked = true;
  };
}

function fast(
  url: string,
  options: Partial<SimulateCallOptions> = {},
): SimulateCallOptions {
  return {
    url,
    pcm: TONE,
    sampleRate: 8000,
    realtime: false,
    waitForReplyMs: 200,
    ...options,
  };
}

Deno.test("simulator sends connected, start, media and stop in Exotel's wire format", async () => {
  const bot = startBot(() => {});
  try {
    const report = await simulateCall(
      fast(`${bot.url}?campaign=spring`, {
        from: "+911234",
        to: "0800",
        waitForReplyMs: 0,
      }),
    );
    await bot.close();
    const [call] = bot.calls;
    assertEquals(report.connected, true);
    assertEquals(report.endReason, "completed");
    assertEquals(call.url.searchParams.get("sample-rate"), "8000");
    assertEquals(call.url.searchParams.get("call_id"), report.callSid);

    const [connected, start] = call.frames;
    assertEquals(connected, { event: "connected" });
    assertEquals(start, {
      event: "start",
      sequence_number: "1",
      stream_sid: report.streamSid,
      start: {
        stream_sid: report.streamSid,
        call_sid: report.callSid,
        account_sid: "simulator",
        from: "+911234",
        to: "0800",
        custom_parameters: { campaign: "spring" },
        media_format: {
          encoding: "audio/x-raw",
          sample_rate: "8000",
          bit_rate: "16",
        },
      },
    });

    const media = call.events("media");
    assertEquals(media.length, 10);
    media.forEach((frame, index) => {
      assertEquals(frame.sequence_number, String(index + 2));
      assertEquals(frame.stream_sid, report.streamSid);
      assertEquals(field(frame, "media", "chunk"), String(index + 1));
      assertEquals(field(frame, "media", "timestamp"), String(index * 100));
    });
    assertEquals(concat(media.map(payloadOf)), TONE);
    assertEquals(report.sent.mediaFrames, 10);
    assertEquals(report.sent.pcmBytes, TONE.length);

    const stop = call.frames.at(-1);
    assertEquals(stop, {
      event: "stop",
      sequence_number: "12",
      stream_sid: report.streamSid,
      stop: {
        call_sid: report.callSid,
        account_sid: "simulator",
        reason: "callended",
      },
    });
    assertEquals(report.sent.frames, call.frames.length);
    assertEquals(report.closeCode, 1000);
  } finally {
    await bot.close();
  }
});

Deno.test("simulator takes the call id from the URL and keeps it out of custom parameters", async () => {
  const bot = startBot(() => {});
  try {
    const report = await simulateCall(
      fast(`${bot.url}?callSid=CA42&sample-rate=8000&lang=hi`),
    );
    await bot.close();
    assertEquals(report.callSid, "CA42");
    assertEquals(bot.calls[0].url.searchParams.has("call_id"), false);
    assertEquals(field(bot.calls[0].frames[1], "start", "custom_parameters"), {
      lang: "hi",
    });
  } finally {
    await bot.close();
  }
});

Deno.test("simulator records a bot's 3200-byte echo as received and heard audio", async () => {
  const bot = startBot(echoBot());
  try {
    const report = await simulateCall(fast(bot.url, { waitForReplyMs: 300 }));
    await bot.close();
    assertEquals(report.badChunks, []);
    assertEquals(report.badFrames, []);
    assertEquals(report.received.mediaFrames, 5);
    assertEquals(report.received.pcmBytes, TONE.length);
    assertEquals(report.receivedPcm, TONE);
    assertEquals(report.heardPcm, TONE);
    assertEquals(report.marksReceived, ["reply"]);
    assertEquals(report.marksEchoed, ["reply"]);
    assertExists(report.timeToFirstReplyMs);
    const [echo] = bot.calls[0].events("mark");
    assertEquals(echo.stream_sid, report.streamSid);
    assertEquals(echo.mark, { name: "reply" });
    assertMatch(String(echo.sequence_number), /^\d+$/);
    assertEquals(typeof echo.sequence_number, "string");
  } finally {
    await bot.close();
  }
});

Deno.test("simulator reports every chunk that breaks Exotel's chunk rules", async () => {
  const bot = startBot((call, frame) => {
    if (!isFirstMedia(frame)) return;
    call.media(new Uint8Array(3200));
    call.media(new Uint8Array(100));
    call.media(new Uint8Array(3300));
    call.media(new Uint8Array(100480));
    call.media(new Uint8Array(3200), "someone-else");
    call.media(new Uint8Array(3200), null);
    call.send({
      event: "media",
      stream_sid: call.streamSid,
      media: { payload: "!!!" },
    });
    call.send({ event: "media", stream_sid: call.streamSid, media: {} });
  });
  try {
    const report = await simulateCall(fast(bot.url));
    await bot.close();
    assertEquals(
      report.badChunks.map(({ index, bytes, problems }) => ({
        index,
        bytes,
        problems,
      })),
      [
        {
          index: 1,
          bytes: 100,
          problems: ["not_multiple_of_320", "too_small"],
        },
        { index: 2, bytes: 3300, problems: ["not_multiple_of_320"] },
        { index: 3, bytes: 100480, problems: ["too_large"] },
        { index: 4, bytes: 3200, problems: ["wrong_stream_sid"] },
        { index: 5, bytes: 3200, problems: ["missing_stream_sid"] },
        { index: 6, bytes: 0, problems: ["invalid_payload"] },
        { index: 7, bytes: 0, problems: ["invalid_payload"] },
      ],
    );
    assertEquals(report.badChunks[3].streamSid, "someone-else");
    assertEquals(report.received.mediaFrames, 8);
  } finally {
    await bot.close();
  }
});

for (const sampleRate of [8000, 16000] as const) {
  Deno.test(`simulator echoes a mark only after the audio before it has played at ${sampleRate} Hz`, async () => {
    const playMs = 32000 / (sampleRate * 2 / 1000);
    let sentAt = -1;
    let echoedAt = -1;
    const bot = startBot((call, frame) => {
      if (isFirstMedia(frame)) {
        sentAt = call.lastTimestamp;
        for (let i = 0; i < 10; i++) call.media(new Uint8Array(3200).fill(9));
        call.mark("m1");
      }
      if (frame.event === "mark") echoedAt = call.lastTimestamp;
    });
    try {
      const report = await simulateCall(
        fast(bot.url, { pcm: new Uint8Array(3200), sampleRate }),
      );
      await bot.close();
      assertEquals(report.marksEchoed, ["m1"]);
      assertEquals(bot.calls[0].events("mark").length, 1);
      // The echo goes out before the frame of the tick that reached it, so
      // the bot has seen caller audio up to one frame short of the play time.
      assert(
        echoedAt + 100 >= sentAt + playMs,
        `mark echoed at caller time ${echoedAt}, audio queued at ${sentAt} plays ${playMs} ms`,
      );
      assertEquals(report.heardBytes, 32000);
    } finally {
      await bot.close();
    }
  });
}

Deno.test("simulator drops unplayed audio and pending marks on clear and never echoes it", async () => {
  const bot = startBot((call, frame) => {
    if (!isFirstMedia(frame)) return;
    for (let i = 0; i < 50; i++) call.media(new Uint8Array(3200).fill(1));
    call.mark("lost");
    call.clear();
    for (let i = 0; i < 2; i++) call.media(new Uint8Array(3200).fill(7));
    call.mark("after");
  });
  try {
    const report = await simulateCall(fast(bot.url));
    await bot.close();
    assertEquals(report.clearsReceived, 1);
    assertEquals(report.marksReceived, ["lost", "after"]);
    assertEquals(report.marksDropped, ["lost"]);
    assertEquals(report.marksEchoed, ["after"]);
    assertEquals(report.receivedPcm.length, 52 * 3200);
    assertGreater(report.clearedBytes, 0);
    assertEquals(report.heardBytes + report.clearedBytes, 52 * 3200);
    assertEquals(report.heardPcm.length, report.heardBytes);
    assert(report.heardPcm.subarray(-6400).every((byte) => byte === 7));
    assertEquals(bot.calls[0].events("clear"), []);
  } finally {
    await bot.close();
  }
});

Deno.test("simulator reports frames Exotel would not understand and goes on", async () => {
  const bot = startBot((call, frame) => {
    if (!isFirstMedia(frame)) return;
    call.send("not json");
    call.send(new Uint8Array([1, 2, 3]));
    call.send("[1,2]");
    call.send({ event: "hello", stream_sid: call.streamSid });
    call.send({ event: "mark", stream_sid: call.streamSid });
    call.send({ event: "clear", stream_sid: "someone-else" });
    call.send({ event: "mark", mark: { name: "x" } });
  });
  try {
    const report = await simulateCall(fast(bot.url));
    await bot.close();
    assertEquals(report.badFrames.map((frame) => frame.problem), [
      "invalid_json",
      "binary",
      "not_an_object",
      "unknown_event",
      "missing_field",
      "wrong_stream_sid",
      "missing_stream_sid",
    ]);
    assertEquals(report.badFrames[3].event, "hello");
    assertEquals(report.badFrames[0].preview, "not json");
    assertEquals(report.received.frames, 7);
    assertEquals(report.clearsReceived, 1);
    assertEquals(report.marksEchoed, ["x"]);
    assertEquals(report.endReason, "completed");
  } finally {
    await bot.close();
  }
});

Deno.test("simulator reports a refused upgrade with its HTTP status", async () => {
  const bot = startBot(() => {}, {
    authorize: (request) =>
      request.headers.get("authorization") === "Bearer secret",
  });
  try {
    const report = await simulateCall(fast(bot.url));
    assertEquals(report.connected, false);
    assertEquals(report.httpStatus, 401);
    assertEquals(report.endReason, "connect_failed");
    assertEquals(report.sent.frames, 0);
    assertExists(report.error);
  } finally {
    await bot.close();
  }
});

Deno.test("simulator sends given headers and turns URL credentials into Basic auth", async () => {
  const seen: string[] = [];
  const bot = startBot(() => {}, {
    authorize(request) {
      const header = request.headers.get("authorization") ?? "";
      seen.push(header);
      return header === "Bearer secret" ||
        header === `Basic ${btoa("key:to ken")}`;
    },
  });
  try {
    const bearer = await simulateCall(
      fast(bot.url, { headers: { Authorization: "Bearer secret" } }),
    );
    const withCredentials = bot.url.replace("ws://", "ws://key:to%20ken@");
    const basic = await simulateCall(fast(withCredentials));
    assertEquals(bearer.connected, true);
    assertEquals(basic.connected, true);
    assertEquals(seen, ["Bearer secret", `Basic ${btoa("key:to ken")}`]);
    assert(!basic.url.includes("key"), basic.url);
  } finally {
    await bot.close();
  }
});

Deno.test("simulator sends DTMF at its time and mixes caller events over the silence", async () => {
  const bot = startBot(() => {});
  const barge = TONE.subarray(0, 3200);
  try {
    const report = await simulateCall(
      fast(bot.url, {
        pcm: new Uint8Array(3200),
        waitForReplyMs: 0,
        dtmf: [{ atMs: 300, digit: "#" }],
        events: [{
          atMs: 500,
          wav: encodeWav({ sampleRate: 8000, pcm: barge }),
        }],
      }),
    );
    await bot.close();
    const frames = bot.calls[0].frames;
    const media = frames.filter((frame) => frame.event === "media");
    assertEquals(
      media.map((frame) => field(frame, "media", "timestamp")),
      ["0", "100", "200", "300", "400", "500", "600"],
    );
    media.slice(0, 5).forEach((frame) => assert(isSilent(payloadOf(frame))));
    assertEquals(concat(media.slice(5).map(payloadOf)), barge);

    const dtmfAt = frames.findIndex((frame) => frame.event === "dtmf");
    assertEquals(frames[dtmfAt].dtmf, { digit: "#", duration: "100" });
    assertEquals(field(frames[dtmfAt - 1], "media", "timestamp"), "200");
    assertEquals(field(frames[dtmfAt + 1], "media", "timestamp"), "300");
    assertEquals(report.dtmfSent, ["#"]);
  } finally {
    await bot.close();
  }
});

Deno.test("simulator lets a reply-audio script barge in on the bot", async () => {
  let heardCaller = false;
  const bot = startBot((call, frame) => {
    if (isFirstMedia(frame)) {
      for (let i = 0; i < 20; i++) call.media(new Uint8Array(3200).fill(5));
      call.mark("greeting");
    }
    if (
      frame.event === "media" && !heardCaller && !isSilent(payloadOf(frame))
    ) {
      heardCaller = true;
      call.clear();
    }
  });
  try {
    let played = false;
    const report = await simulateCall(
      fast(bot.url, {
        pcm: new Uint8Array(1600),
        waitForReplyMs: 200,
        onReplyAudio(_pcm, caller) {
          if (played) return;
          played = true;
          caller.play(TONE.subarray(0, 3200));
        },
      }),
    );
    await bot.close();
    assert(heardCaller);
    assertEquals(report.clearsReceived, 1);
    assertEquals(report.marksDropped, ["greeting"]);
    assertEquals(report.marksEchoed, []);
    assertGreater(report.receivedPcm.length, report.heardPcm.length);
  } finally {
    await bot.close();
  }
});

Deno.test("simulator hangs up with stop when aborted", async () => {
  const controller = new AbortController();
  const bot = startBot((_call, frame) => {
    if (field(frame, "media", "chunk") === "3") controller.abort();
  });
  try {
    const report = await simulateCall(
      fast(bot.url, { waitForReplyMs: 60000, signal: controller.signal }),
    );
    await bot.close();
    assertEquals(report.endReason, "aborted");
    assertEquals(bot.calls[0].frames.at(-1)?.event, "stop");
  } finally {
    await bot.close();
  }
});

Deno.test("simulator ends the call when the bot closes the socket", async () => {
  const bot = startBot((call, frame) => {
    if (field(frame, "media", "chunk") === "3") call.socket.close(4000, "bye");
  });
  try {
    // Real time: a Deno server closing while frames still pour in resets the
    // connection instead of finishing the close handshake.
    const report = await simulateCall(
      fast(bot.url, { realtime: true, waitForReplyMs: 60000 }),
    );
    await bot.close();
    assertEquals(report.endReason, "closed_by_bot");
    assertEquals(report.closeCode, 4000);
    assertEquals(report.closeReason, "bye");
    assertEquals(bot.calls[0].events("stop"), []);
  } finally {
    await bot.close();
  }
});

Deno.test("simulator waits for a bot that answers after the caller stops", async () => {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bot = startBot((call, frame) => {
    if (field(frame, "media", "chunk") !== "10") return;
    timer = setTimeout(() => {
      call.media(new Uint8Array(3200).fill(3));
      call.mark("late");
    }, 100);
  });
  try {
    const report = await simulateCall(fast(bot.url, { waitForReplyMs: 1500 }));
    await bot.close();
    assertEquals(report.received.pcmBytes, 3200);
    assertEquals(report.marksEchoed, ["late"]);
    assertEquals(report.endReason, "completed");
  } finally {
    clearTimeout(timer);
    await bot.close();
  }
});

Deno.test("simulator streams at real time by default: each frame goes out one frame length after the last on its clock", async () => {
  const FRAME_MS = 100; // the default
  const clock = new FakeClock();
  /** The simulator's clock when each media frame reached the bot. */
  const arrivals: number[] = [];
  const bot = startBot((call, frame) => {
    if (frame.event === "media") arrivals.push(clock.now());
    if (!isFirstMedia(frame)) return;
    call.media(new Uint8Array(3200).fill(2));
    call.mark("rt");
  });
  try {
    let done = false;
    const running = simulateCall({
      url: bot.url,
      pcm: TONE.subarray(0, 4800),
      sampleRate: 8000,
      waitForReplyMs: 100,
      clock,
    }).finally(() => done = true);
    // The clock moves one frame length only once the frame due has arrived,
    // so a frame's arrival time is the time it was sent at.
    for (let frame = 1; frame < 50; frame++) {
      await until(() => done || arrivals.length >= frame, `frame ${frame}`);
      if (done) break;
      assertEquals(arrivals.length, frame, "no frame before its time");
      await clock.advance(FRAME_MS);
    }
    const report = await running;
    await bot.close();
    // 300 ms of caller audio, then silence while the reply plays and goes quiet.
    assert(arrivals.length > 3, `${arrivals.length} frames`);
    assertEquals(
      arrivals,
      arrivals.map((_, index) => index * FRAME_MS),
      "frame i is sent i frame lengths after the first, not earlier",
    );
    const timestamps = bot.calls[0].frames
      .filter((frame) => frame.event === "media")
      .map((frame) => Number(field(frame, "media", "timestamp")));
    assertEquals(timestamps, arrivals);
    assertEquals(report.marksEchoed, ["rt"]);
    assertEquals(report.heardBytes, 3200);
    assertEquals(report.endReason, "completed");
    assertEquals(
      report.callMs,
      arrivals.at(-1),
      "the call's length on its clock",
    );
  } finally {
    await bot.close();
  }
});

Deno.test("simulator rejects options it cannot use, quoting the bad value", async () => {
  const base = fast("ws://127.0.0.1:9/voicebot/ws");
  const cases: Array<[Partial<SimulateCallOptions>, string]> = [
    [
      { sampleRate: Number("11025") as SampleRate },
      'Invalid sample rate "11025"',
    ],
    [{ url: "http://127.0.0.1/voicebot/ws" }, 'Invalid URL "http://127.0.0.1'],
    [
      { url: `${base.url}?sample-rate=16000` },
      'Invalid URL sample-rate "16000"',
    ],
    [{ frameMs: 5 }, 'Invalid frameMs "5"'],
    [{ pcm: new Uint8Array(3) }, 'Invalid PCM length "3"'],
    [{ dtmf: [{ atMs: 0, digit: "X" }] }, 'Invalid DTMF digit "X"'],
    [{ events: [{ atMs: 0 }] }, "Invalid events[0]"],
    [
      { events: [{ atMs: -1, pcm: new Uint8Array(2) }] },
      'Invalid events[0].atMs "-1"',
    ],
  ];
  for (const [options, message] of cases) {
    await assertRejects(
      () => simulateCall({ ...base, ...options }),
      SimulatorOptionError,
      message,
    );
  }
});

Deno.test("simulate CLI parses flags and names the bad one", () => {
  const args = parseSimulateArgs([
    "--",
    "--url",
    "ws://h/voicebot/ws",
    "--wav=a.wav",
    "--dtmf",
    "1@2000,#@3000",
    "--play",
    "b.wav@2500",
    "--frame-ms",
    "20",
    "--fast",
  ]);
  assert(args !== "help");
  assertEquals(args.dtmf, [{ digit: "1", atMs: 2000 }, {
    digit: "#",
    atMs: 3000,
  }]);
  assertEquals(args.play, [{ path: "b.wav", atMs: 2500 }]);
  assertEquals([args.frameMs, args.waitMs, args.fast], [20, 3000, true]);
  assertEquals(parseSimulateArgs(["--help"]), "help");
  const bad: Array<[string[], string]> = [
    [["--wav", "a.wav"], "Missing --url"],
    [
      ["--url", "ws://h", "--wav", "a", "--frame-ms", "abc"],
      'Invalid --frame-ms "abc"',
    ],
    [
      ["--url", "ws://h", "--wav", "a", "--dtmf", "x@1"],
      'Invalid --dtmf "x@1"',
    ],
    [
      ["--url", "ws://h", "--wav", "a", "--wait-ms"],
      "Missing value for --wait-ms",
    ],
    [
      ["--url", "ws://h", "--wav", "a", "--colour", "red"],
      'Unknown flag "--colour"',
    ],
    [
      ["--url", "ws://h", "--wav", "a", "--token", "t", "--basic", "u:p"],
      "--token and --basic",
    ],
    [
      ["--url", "ws://h", "--wav", "a", "--basic", "nocolon"],
      'Invalid --basic "nocolon"',
    ],
  ];
  for (const [argv, message] of bad) {
    assertThrows(() => parseSimulateArgs(argv), UsageError, message);
  }
});

async function runCli(...args: string[]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-write",
      "tools/simulate.ts",
      ...args,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test("simulate CLI plays a WAV, writes the reply and exits 0", async () => {
  const bot = startBot(echoBot(), {
    authorize: (request) => request.headers.get("authorization") === "Bearer T",
  });
  const out = await Deno.makeTempFile({ suffix: ".wav" });
  try {
    const result = await runCli(
      "--url",
      bot.url,
      "--wav",
      TONE_PATH,
      "--out",
      out,
      "--token",
      "T",
      "--dtmf",
      "1@200",
      "--wait-ms",
      "300",
      "--fast",
    );
    await bot.close();
    assertEquals(result.code, 0, result.stdout + result.stderr);
    assertStringIncludes(result.stdout, "marks        1 received, 1 echoed");
    assertStringIncludes(result.stdout, "RESULT       OK");
    const reply = decodeWav(await Deno.readFile(out));
    assertEquals(reply.sampleRate, 8000);
    assertEquals(reply.pcm, TONE);
    assertEquals(field(bot.calls[0].events("dtmf")[0], "dtmf", "digit"), "1");
  } finally {
    await Deno.remove(out);
    await bot.close();
  }
});

Deno.test("simulate CLI exits 1 when the upgrade is refused", async () => {
  const bot = startBot(() => {}, { authorize: () => false });
  try {
    const result = await runCli("--url", bot.url, "--wav", TONE_PATH, "--fast");
    assertEquals(result.code, 1);
    assertStringIncludes(result.stdout, "HTTP 401");
    assertStringIncludes(
      result.stdout,
      "RESULT       FAILED: could not connect",
    );
  } finally {
    await bot.close();
  }
});

Deno.test("simulate CLI exits 1 when the bot sends a chunk that is not a multiple of 320 bytes", async () => {
  const bot = startBot((call, frame) => {
    if (isFirstMedia(frame)) call.media(new Uint8Array(100));
  });
  try {
    const result = await runCli(
      "--url",
      bot.url,
      "--wav",
      TONE_PATH,
      "--fast",
      "--wait-ms",
      "200",
    );
    await bot.close();
    assertEquals(result.code, 1);
    assertStringIncludes(
      result.stdout,
      "#0: 100 B, not_multiple_of_320, too_small",
    );
    assertStringIncludes(result.stdout, "broke Exotel's 320-byte rules");
  } finally {
    await bot.close();
  }
});

Deno.test("simulate CLI prints usage for --help and exits 2 on bad arguments", async (t) => {
  const cases: [string, string[], number, "stdout" | "stderr", string][] = [
    ["--help", ["--help"], 0, "stdout", "Usage: deno task simulate"],
    [
      "a bad --frame-ms",
      ["--url", "ws://127.0.0.1:9/x", "--wav", TONE_PATH, "--frame-ms", "7"],
      2,
      "stderr",
      'Invalid --frame-ms "7"',
    ],
    [
      "a missing --wav file",
      ["--url", "ws://127.0.0.1:9/x", "--wav", "no/such.wav"],
      2,
      "stderr",
      'Invalid --wav "no/such.wav"',
    ],
  ];
  for (const [name, args, code, stream, text] of cases) {
    await t.step(name, async () => {
      const result = await runCli(...args);
      assertEquals(result.code, code);
      assertStringIncludes(result[stream], text);
    });
  }
});

Deno.test("simulator speaks μ-law: announces it in start, sends μ-law media, decodes the bot's and checks 160-byte rules", async () => {
  const bot = startBot((call, frame) => {
    if (!isFirstMedia(frame)) return;
    // The caller's first 100 ms back as it came, then three more chunks.
    call.media(payloadOf(frame));
    call.media(new Uint8Array(100).fill(0xff));
    call.media(new Uint8Array(1700).fill(0xff));
    call.media(new Uint8Array(480).fill(0xff));
  });
  try {
    const report = await simulateCall(fast(bot.url, { encoding: "mulaw" }));
    await bot.close();
    const [start] = bot.calls[0].events("start");
    assertEquals(field(start, "start", "media_format"), {
      encoding: "audio/x-mulaw",
      sample_rate: "8000",
      bit_rate: "8",
    });
    const media = bot.calls[0].events("media");
    // 100 ms frames of 8-bit μ-law: 800 bytes each, the tone encoded.
    assertEquals(payloadOf(media[0]), encodeMulaw(TONE.subarray(0, 1600)));
    assert(media.every((frame) => payloadOf(frame).length === 800));
    // Silence after the tone is μ-law silence, not PCM zeros.
    assert(payloadOf(media.at(-1)!).every((byte) => byte === 0xff));
    assertEquals(report.encoding, "mulaw");
    assertEquals(report.sent.pcmBytes, report.sent.mediaFrames * 1600);
    assertEquals(
      report.badChunks.map(({ bytes, problems }) => ({ bytes, problems })),
      [
        { bytes: 100, problems: ["not_multiple_of_160", "too_small"] },
        { bytes: 1700, problems: ["not_multiple_of_160"] },
      ],
    );
    // Received audio is reported as PCM: two bytes per μ-law byte.
    assertEquals(
      report.receivedPcm.subarray(0, 1600),
      decodeMulaw(encodeMulaw(TONE.subarray(0, 1600))),
    );
    assertEquals(report.received.pcmBytes, (800 + 100 + 1700 + 480) * 2);
  } finally {
    await bot.close();
  }
});

Deno.test("simulator refuses μ-law at any rate but 8 kHz, and an unknown encoding", async () => {
  const base = fast("ws://127.0.0.1:9/voicebot/ws");
  await assertRejects(
    () =>
      simulateCall({
        ...base,
        url: `${base.url}?sample-rate=16000`,
        sampleRate: 16000,
        pcm: new Uint8Array(320),
        encoding: "mulaw",
      }),
    SimulatorOptionError,
    'Invalid sample rate "16000" for μ-law',
  );
  await assertRejects(
    () =>
      simulateCall({
        ...base,
        encoding: "alaw" as SimulateCallOptions["encoding"],
      }),
    SimulatorOptionError,
    'Invalid encoding "alaw"',
  );
});

Deno.test("simulate CLI takes --encoding pcm or mulaw and names a bad one", () => {
  const base = ["--url", "ws://h/voicebot/ws", "--wav", "a.wav"];
  const pcm = parseSimulateArgs(base);
  assert(pcm !== "help");
  assertEquals(pcm.encoding, "pcm");
  const mulaw = parseSimulateArgs([...base, "--encoding", "MULAW"]);
  assert(mulaw !== "help");
  assertEquals(mulaw.encoding, "mulaw");
  assertThrows(
    () => parseSimulateArgs([...base, "--encoding", "opus"]),
    UsageError,
    'Invalid --encoding "opus": expected pcm or mulaw',
  );
});
