import { assert, assertEquals } from "@std/assert";
import type { SampleRate } from "../src/audio/pcm.ts";
import { PcmPipe } from "../src/audio/pcm_pipe.ts";
import { Player, type PlayerOptions } from "../src/call/player.ts";
import { FakeClock, settle } from "./fakes/clock.ts";

interface Sent {
  at: number;
  frame: {
    event: string;
    stream_sid: string;
    media?: { payload: string };
    mark?: { name: string };
  };
}

function setup(
  options: {
    sampleRate?: SampleRate;
    chunkBytes?: number;
    leadMs?: number;
    onChunk?: PlayerOptions["onChunk"];
    onError?: PlayerOptions["onError"];
  } = {},
) {
  const clock = new FakeClock();
  const sent: Sent[] = [];
  let buffered = 0;
  const player = new Player({
    streamSid: "S1",
    sampleRate: options.sampleRate ?? 8000,
    chunkBytes: options.chunkBytes ?? 3200,
    leadMs: options.leadMs ?? 400,
    maxBufferedBytes: 65536,
    send: (text) => sent.push({ at: clock.now(), frame: JSON.parse(text) }),
    bufferedAmount: () => buffered,
    clock,
    onChunk: options.onChunk,
    onError: options.onError,
  });
  const media = () => sent.filter((entry) => entry.frame.event === "media");
  const sizes = () =>
    media().map((entry) =>
      Uint8Array.fromBase64(entry.frame.media!.payload).length
    );
  return {
    clock,
    sent,
    player,
    media,
    sizes,
    setBuffered: (bytes: number) => buffered = bytes,
  };
}

Deno.test("player sends the first chunks at once, up to the lead", async () => {
  const { player, clock, sizes } = setup();
  player.play(new Uint8Array(16000)); // 1 s at 8 kHz: five 200 ms chunks
  await settle();
  assertEquals(sizes(), [3200, 3200]);
  await clock.advance(200);
  assertEquals(sizes().length, 3);
  await clock.advance(2000);
  assertEquals(sizes().length, 5);
  player.stop();
});

Deno.test("player paces at real time for the call's rate", async () => {
  for (const [rate, upFront] of [[8000, 2], [16000, 4], [24000, 5]] as const) {
    const { player, clock, media } = setup({ sampleRate: rate });
    const seconds = 2;
    player.play(new Uint8Array(rate * 2 * seconds));
    await clock.advance(0);
    assertEquals(media().length, upFront, `${rate} Hz`);
    await clock.advance(seconds * 1000 + 1000);
    const last = media().at(-1)!;
    // Everything is sent by the time the audio is nearly played, never long before.
    assert(
      last.at >= seconds * 1000 - 400 - 200,
      `${rate} Hz sent its last chunk at ${last.at} ms`,
    );
    assert(
      last.at <= seconds * 1000,
      `${rate} Hz sent its last chunk at ${last.at} ms`,
    );
    player.stop();
  }
});

Deno.test("player pads the last chunk to a multiple of 320 bytes and marks the utterance", async () => {
  const { player, clock, sent, sizes } = setup();
  const audio = new Uint8Array(7000).fill(9);
  player.play(audio, { mark: "greeting" });
  await clock.advance(2000);
  assertEquals(sizes(), [3200, 3200, 640]);
  const last = sent.at(-2)!.frame;
  const tail = Uint8Array.fromBase64(last.media!.payload);
  assertEquals(tail.subarray(0, 600).every((byte) => byte === 9), true);
  assertEquals(tail.subarray(600).every((byte) => byte === 0), true);
  assertEquals(sent.at(-1)!.frame, {
    event: "mark",
    stream_sid: "S1",
    mark: { name: "greeting" },
  });
  assertEquals(sent.every((entry) => entry.frame.stream_sid === "S1"), true);
  player.stop();
});

Deno.test("player resolves an utterance when Exotel echoes its mark, earlier ones too", async () => {
  const { player, clock, sent } = setup();
  const first = player.play(new Uint8Array(3200));
  const second = player.play(new Uint8Array(3200));
  await clock.advance(1000);
  const marks = sent.filter((entry) => entry.frame.event === "mark").map((
    entry,
  ) => entry.frame.mark!.name);
  assertEquals(marks, ["utt-1", "utt-2"]);
  assertEquals(player.acknowledge("nobody-sent-this"), undefined);
  assertEquals(player.acknowledge("utt-2"), "utt-2");
  assertEquals(await first, {
    status: "played",
    mark: "utt-1",
    sentBytes: 3200,
    heardMs: 200,
  });
  assertEquals((await second).status, "played");
  assertEquals(player.counters.marksSent, 2);
  assertEquals(player.counters.marksAcknowledged, 1);
  assertEquals(player.isBusy, false);
  player.stop();
});

Deno.test("player plays utterances one after another, never interleaved", async () => {
  const { player, clock, sent } = setup();
  player.play(new Uint8Array(6400).fill(1), { mark: "a" });
  player.play(new Uint8Array(6400).fill(2), { mark: "b" });
  await clock.advance(3000);
  const order = sent.map((entry) =>
    entry.frame.event === "mark"
      ? entry.frame.mark!.name
      : String(Uint8Array.fromBase64(entry.frame.media!.payload)[0])
  );
  assertEquals(order, ["1", "1", "a", "2", "2", "b"]);
  player.stop();
});

Deno.test("clear drops what is queued, sends clear, and reports what was heard", async () => {
  const { player, clock, sent, media } = setup();
  const long = player.play(new Uint8Array(32000)); // 2 s
  const next = player.play(new Uint8Array(3200));
  await clock.advance(300);
  const sentBefore = media().length;
  assertEquals(player.clear(), true);
  assertEquals(sent.at(-1)!.frame, { event: "clear", stream_sid: "S1" });
  const interrupted = await long;
  assertEquals(interrupted.status, "cleared");
  // The chunk playing at 300 ms (200–400) finishes, as on Exotel.
  assertEquals(interrupted.heardMs, 400);
  assertEquals(interrupted.sentBytes, sentBefore * 3200);
  assertEquals((await next).status, "cleared");
  await clock.advance(3000);
  assertEquals(
    media().length,
    sentBefore,
    "nothing more of the cleared audio is sent",
  );
  assertEquals(player.counters.clears, 1);
  player.stop();
});

Deno.test("clear with nothing playing sends nothing", async () => {
  const { player, sent } = setup();
  assertEquals(player.clear(), false);
  await settle();
  assertEquals(sent, []);
});

Deno.test("player plays new audio at once after a clear", async () => {
  const { player, clock, media } = setup();
  player.play(new Uint8Array(32000));
  await clock.advance(100);
  player.clear();
  const before = media().length;
  player.play(new Uint8Array(3200), { mark: "after" });
  await settle();
  assertEquals(media().length, before + 1);
  player.stop();
});

/** 200 ms chunks of 8 kHz PCM whose first sample is their index, to tell them apart. */
function numberedChunks(count: number): Uint8Array {
  const pcm = new Uint8Array(count * 3200);
  for (let index = 0; index < count; index++) pcm[index * 3200] = index + 1;
  return pcm;
}

function chunkNumbers(media: Sent[]): number[] {
  return media.map((entry) =>
    Uint8Array.fromBase64(entry.frame.media!.payload)[0]
  );
}

Deno.test("pause sends clear, holds what had not started, and resume goes on from there, whatever the audio", async () => {
  const chunk = (n: number) => new Uint8Array(3200).fill(n);
  // How each kind of audio gets chunks 1–5 to the player: 1–3 before the
  // pause, 4 while paused, 5 after the resume (bytes have them all at once).
  const kinds: Array<{
    name: string;
    audio(): { audio: Uint8Array | PcmPipe; feed(stage: number): void };
  }> = [
    {
      name: "bytes",
      audio: () => ({ audio: numberedChunks(5), feed() {} }),
    },
    {
      name: "a pushed stream",
      audio() {
        const pipe = new PcmPipe({ maxBytes: 1 << 20 });
        const stages = [[1, 2, 3], [4], [5]];
        return {
          audio: pipe,
          feed(stage) {
            for (const n of stages[stage]) pipe.push(chunk(n));
            if (stage === 2) pipe.close();
          },
        };
      },
    },
  ];
  for (const kind of kinds) {
    const { player, clock, sent, media } = setup();
    const { audio, feed } = kind.audio();
    const speech = player.play(audio, { mark: "speech" });
    feed(0);
    await clock.advance(300); // chunks 1–3 sent; 2 is playing, 3 queued
    assertEquals(chunkNumbers(media()), [1, 2, 3], kind.name);
    assertEquals(player.pause(), true, kind.name);
    assertEquals(sent.at(-1)!.frame.event, "clear", kind.name);
    feed(1);
    await clock.advance(1000);
    assertEquals(
      media().length,
      3,
      `${kind.name}: nothing is sent while paused`,
    );
    player.resume();
    feed(2);
    await clock.advance(2000);
    assertEquals(chunkNumbers(media()), [1, 2, 3, 3, 4, 5], kind.name);
    const marks = sent.filter((entry) => entry.frame.event === "mark");
    assertEquals(marks.map((entry) => entry.frame.mark!.name), ["speech"]);
    assertEquals(player.acknowledge("speech"), "speech");
    assertEquals(await speech, {
      status: "played",
      mark: "speech",
      sentBytes: 16000,
      heardMs: 1000,
    }, kind.name);
    assertEquals(player.counters.clears, 1, kind.name);
    player.stop();
  }
});

Deno.test("pause sends again the marks a clear may drop, under new names", async () => {
  const { player, clock, sent } = setup();
  const short = player.play(numberedChunks(1), { mark: "short" });
  const long = player.play(numberedChunks(3), { mark: "long" });
  await clock.advance(250); // "short" played; "long" chunk 1 playing, 2 queued
  player.pause();
  const marks = () =>
    sent.filter((entry) => entry.frame.event === "mark").map((entry) =>
      entry.frame.mark!.name
    );
  assertEquals(marks(), ["short", "short~1"]);
  assertEquals(player.acknowledge("short"), undefined, "the old name is gone");
  assertEquals(player.acknowledge("short~1"), "short");
  assertEquals((await short).status, "played");
  player.resume();
  await clock.advance(2000);
  assertEquals(marks(), ["short", "short~1", "long"]);
  assertEquals(player.acknowledge("long"), "long");
  assertEquals((await long).heardMs, 600);
  player.stop();
});

Deno.test("audio that is not resumable keeps no chunk: a pause only stops sending", async () => {
  const { player, clock, sent, media } = setup();
  player.play(numberedChunks(5), { resumable: false });
  await clock.advance(300);
  assertEquals(player.pause(), false);
  assertEquals(sent.filter((entry) => entry.frame.event === "clear"), []);
  await clock.advance(1000);
  assertEquals(chunkNumbers(media()), [1, 2, 3]);
  player.resume();
  await clock.advance(2000);
  assertEquals(chunkNumbers(media()), [1, 2, 3, 4, 5]);
  player.stop();
});

Deno.test("a clear after a pause drops everything without a second clear", async () => {
  const { player, clock, sent } = setup();
  const speech = player.play(numberedChunks(5));
  await clock.advance(300);
  player.pause();
  assertEquals(player.clear(), false);
  assertEquals(sent.filter((entry) => entry.frame.event === "clear").length, 1);
  assertEquals(await speech, {
    status: "cleared",
    mark: "utt-1",
    sentBytes: 6400,
    heardMs: 400,
  });
  assertEquals(player.isPaused, false);
  player.stop();
});

Deno.test("pause with nothing playing sends nothing, and holds new audio until resume", async () => {
  const { player, clock, sent, media } = setup();
  assertEquals(player.pause(), false);
  assertEquals(player.isPaused, true);
  player.play(numberedChunks(2));
  await clock.advance(500);
  assertEquals(sent, []);
  player.resume();
  await clock.advance(500);
  assertEquals(chunkNumbers(media()), [1, 2]);
  player.stop();
});

Deno.test("player streams audio as it is produced and chunks across pieces", async () => {
  const { player, clock, sizes, sent } = setup();
  const pipe = new PcmPipe({ maxBytes: 1 << 20 });
  const done = player.play(pipe, { mark: "stream" });
  pipe.push(new Uint8Array(1000));
  await clock.advance(0);
  assertEquals(sizes(), [], "a partial chunk waits for more audio");
  pipe.push(new Uint8Array(2500));
  await clock.advance(0);
  assertEquals(sizes(), [3200]);
  pipe.push(new Uint8Array(100));
  pipe.close();
  await clock.advance(1000);
  assertEquals(sizes(), [3200, 640]);
  assertEquals(sent.at(-1)!.frame.mark, { name: "stream" });
  player.acknowledge("stream");
  assertEquals((await done).sentBytes, 3840);
  player.stop();
});

Deno.test("player sends a pushed stream from inside the push when pacing allows", async () => {
  const { player, clock, sizes } = setup();
  const pipe = new PcmPipe({ maxBytes: 1 << 20 });
  player.play(pipe, { mark: "live" });
  await settle();
  pipe.push(new Uint8Array(3200));
  assertEquals(sizes(), [3200], "sent before the push returned");
  await clock.advance(200);
  pipe.push(new Uint8Array(1600));
  pipe.push(new Uint8Array(1600));
  assertEquals(sizes(), [3200, 3200], "pieces joined into one chunk");
  player.stop();
});

Deno.test("a burst pushed past the lead waits its turn and keeps its order", async () => {
  const { player, clock, media } = setup();
  const pipe = new PcmPipe({ maxBytes: 1 << 20 });
  const done = player.play(pipe, { mark: "burst" });
  await settle();
  const pieces = [1, 2, 3, 4, 5].map((n) => new Uint8Array(3200).fill(n));
  for (const piece of pieces) pipe.push(piece);
  assertEquals(media().length, 2, "the lead allows two 200 ms chunks");
  await clock.advance(200);
  assertEquals(media().length, 3);
  pipe.push(new Uint8Array(3200).fill(6));
  pipe.close();
  await clock.advance(2000);
  const firstBytes = media().map((entry) =>
    Uint8Array.fromBase64(entry.frame.media!.payload)[0]
  );
  assertEquals(firstBytes, [1, 2, 3, 4, 5, 6]);
  player.acknowledge("burst");
  assertEquals((await done).sentBytes, 6 * 3200);
  player.stop();
});

Deno.test("clear stops pulling from a stream that is still producing", async () => {
  const { player, clock } = setup();
  const pipe = new PcmPipe({ maxBytes: 1 << 20 });
  const done = player.play(pipe);
  pipe.push(new Uint8Array(3200));
  await clock.advance(0);
  player.clear();
  assertEquals((await done).status, "cleared");
  pipe.push(new Uint8Array(3200));
  assertEquals(pipe.bufferedBytes, 0, "the stream was closed by the clear");
  player.stop();
});

Deno.test("player waits while the socket is backed up", async () => {
  const { player, clock, media, setBuffered } = setup();
  setBuffered(1 << 20);
  player.play(new Uint8Array(6400));
  await clock.advance(500);
  assertEquals(media().length, 0);
  setBuffered(0);
  await clock.advance(20);
  assertEquals(media().length, 2);
  player.stop();
});

Deno.test("stop resolves everything as stopped and sends nothing more", async () => {
  const { player, clock, sent } = setup();
  const playing = player.play(new Uint8Array(32000));
  await clock.advance(0);
  const count = sent.length;
  player.stop();
  assertEquals((await playing).status, "stopped");
  assertEquals((await player.play(new Uint8Array(320))).status, "stopped");
  await clock.advance(3000);
  assertEquals(sent.length, count);
  assertEquals(clock.pending, 0, "no timer is left behind");
});

Deno.test("an empty utterance sends only its mark", async () => {
  const { player, sent } = setup();
  player.play(new Uint8Array(0), { mark: "checkpoint" });
  await settle();
  assertEquals(sent.map((entry) => entry.frame.event), ["mark"]);
  player.stop();
});

/** Builds an async generator of `pieces`, each yielded after a real macrotask, as a TTS stream arrives. */
async function* streamed(pieces: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const piece of pieces) {
    await new Promise((resolve) => setTimeout(resolve, 0));
    yield piece;
  }
}

Deno.test("a synthesised stream's first 100 ms go out at once, then whole chunks", async () => {
  const { player, clock, sizes, sent } = setup();
  const done = player.play(
    streamed([new Uint8Array(1600), new Uint8Array(4800)]),
    { mark: "answer" },
  );
  for (let i = 0; i < 5; i++) await clock.advance(0);
  assertEquals(sizes(), [1600, 3200, 1600]);
  assertEquals(sent.at(-1)!.frame.mark, { name: "answer" });
  player.acknowledge("answer");
  assertEquals((await done).sentBytes, 6400);
  player.stop();
});

Deno.test("a stream is pulled only as fast as it is sent", async () => {
  const { player, clock, media } = setup();
  let pulls = 0;
  async function* tts() {
    for (let n = 1; n <= 10; n++) {
      pulls++;
      yield new Uint8Array(3200).fill(n);
    }
  }
  player.play(tts(), { resumable: false });
  for (let i = 0; i < 5; i++) await clock.advance(0);
  // Two 200 ms pieces fill the 400 ms lead; the third waits to be sent,
  // and nothing further is pulled meanwhile.
  assertEquals(media().length, 2);
  assertEquals(pulls, 3);
  await clock.advance(3000);
  assertEquals(pulls, 10);
  assertEquals(media().length, 10);
  player.stop();
});

Deno.test("a stream that fails mid-utterance is reported, its audio so far plays, then the next utterance", async () => {
  const errors: unknown[] = [];
  const { player, clock, sent, sizes } = setup({
    onError: (error) => errors.push(error),
  });
  async function* failing() {
    yield new Uint8Array(3200);
    throw new Error("TTS connection reset");
  }
  const broken = player.play(failing(), { mark: "broken" });
  player.play(new Uint8Array(3200), { mark: "next" });
  await clock.advance(1000);
  assertEquals(errors.map((error) => (error as Error).message), [
    "TTS connection reset",
  ]);
  assertEquals(sizes(), [3200, 3200]);
  const marks = sent.filter((entry) => entry.frame.event === "mark").map((
    entry,
  ) => entry.frame.mark!.name);
  assertEquals(marks, ["broken", "next"]);
  player.acknowledge("broken");
  assertEquals((await broken).sentBytes, 3200);
  player.stop();
});

Deno.test("a clear made from inside a send stops the utterance there", async () => {
  const ref: { player?: Player } = {};
  const context = setup({ onChunk: () => ref.player?.clear() });
  const player = ref.player = context.player;
  const speech = player.play(numberedChunks(5));
  await settle();
  assertEquals(chunkNumbers(context.media()), [1]);
  assertEquals((await speech).status, "cleared");
  assertEquals(context.sent.at(-1)!.frame.event, "clear");
  await context.clock.advance(2000);
  assertEquals(context.media().length, 1);
  assertEquals(context.clock.pending, 0, "no timer is left behind");
  player.stop();
});

Deno.test("audio played from inside a send waits its turn", async () => {
  const ref: { player?: Player } = {};
  let played = false;
  const context = setup({
    onChunk: () => {
      if (played) return;
      played = true;
      ref.player?.play(new Uint8Array(3200).fill(9), { mark: "b" });
    },
  });
  const player = ref.player = context.player;
  player.play(numberedChunks(2), { mark: "a" });
  await context.clock.advance(2000);
  const order = context.sent.map((entry) =>
    entry.frame.event === "mark"
      ? entry.frame.mark!.name
      : String(Uint8Array.fromBase64(entry.frame.media!.payload)[0])
  );
  assertEquals(order, ["1", "2", "a", "9", "b"]);
  player.stop();
});
