/**
 * Property-based tests: random and mutated input never breaks the protocol
 * parser, the chunker, the player or a call. `FUZZ_RUNS` sets the number of
 * cases (`deno task fuzz` runs many more than `deno task test`).
 */
import fc from "fast-check";
import { assert, assertEquals } from "@std/assert";
import {
  alignUp,
  Chunker,
  isValidChunkSize,
  padToAlignment,
} from "../src/audio/pcm.ts";
import type { Playback } from "../src/bots/bot.ts";
import { parseInboundFrame } from "../src/exotel/protocol.ts";
import { Player } from "../src/call/player.ts";
import { Call } from "../src/call/call.ts";
import { SessionRegistry } from "../src/call/registry.ts";
import { createSocketPair } from "../src/call/socket.ts";
import { createEchoBot } from "../src/bots/echo.ts";
import { ExotelPlayback } from "../tools/exotel_playback.ts";
import { FakeClock, settle } from "./fakes/clock.ts";
import { concat } from "@std/bytes";

const numRuns = Number(Deno.env.get("FUZZ_RUNS") ?? 150);

const validFrames = (streamSid: string) =>
  fc.oneof(
    fc.constant({ event: "connected" }),
    fc.record({
      event: fc.constant("start"),
      stream_sid: fc.constant(streamSid),
      start: fc.record({
        stream_sid: fc.constant(streamSid),
        call_sid: fc.string(),
        media_format: fc.record({
          sample_rate: fc.constantFrom("8000", "16000", "24000", "x", 8000),
        }),
      }),
    }),
    fc.uint8Array({ maxLength: 4000 }).map((pcm) => ({
      event: "media",
      stream_sid: streamSid,
      media: { payload: pcm.toBase64(), chunk: "1" },
    })),
    fc.constantFrom("0", "5", "#", "*", "x", "").map((digit) => ({
      event: "dtmf",
      dtmf: { digit },
    })),
    fc.string().map((name) => ({ event: "mark", mark: { name } })),
    fc.constant({ event: "clear" }),
  );

/** A valid frame as text, then maybe broken: cut, bytes flipped, fields renamed or retyped. */
const mutatedFrame = (streamSid: string) =>
  fc.tuple(
    validFrames(streamSid),
    fc.nat(),
    fc.integer({ min: 0, max: 5 }),
    fc.anything(),
  ).map(
    ([frame, at, how, junk]) => {
      const text = JSON.stringify(frame);
      const i = at % (text.length + 1);
      switch (how) {
        case 0:
          return text;
        case 1:
          return text.slice(0, i);
        case 2:
          return text.slice(0, i) + String.fromCharCode(at % 128) +
            text.slice(i + 1);
        case 3:
          return JSON.stringify({ ...frame, media: junk });
        case 4:
          return JSON.stringify({ ...frame, event: junk });
        default:
          return JSON.stringify(junk) ?? "";
      }
    },
  );

Deno.test("the parser never throws, whatever the frame", () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), mutatedFrame("S")), (text) => {
      const result = parseInboundFrame(text);
      assert(result.ok || result.error.message.length > 0);
    }),
    { numRuns: numRuns * 4 },
  );
});

Deno.test("the chunker keeps every byte, in order, in chunks that follow the 320-byte rules", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 20 }).map((n) => n * 320),
      fc.array(fc.uint8Array({ maxLength: 9000 }), { maxLength: 20 }),
      (chunkBytes, pieces) => {
        const chunker = new Chunker(chunkBytes);
        const out = pieces.flatMap((piece) => chunker.push(piece));
        const last = chunker.flush();
        if (last) out.push(last);
        const input = pieces.flatMap((piece) => [...piece]);
        const output = out.flatMap((chunk) => [...chunk]);
        assert(out.every((chunk) => isValidChunkSize(chunk.length)));
        assert(out.slice(0, -1).every((chunk) => chunk.length === chunkBytes));
        assertEquals(output.length, alignUp(input.length));
        assertEquals(output.slice(0, input.length), input);
      },
    ),
    { numRuns },
  );
});

type PlayerOp =
  | { op: "play"; bytes: number }
  | { op: "clear" }
  | { op: "pause" }
  | { op: "resume" }
  | { op: "ack"; mark: number }
  | { op: "advance"; ms: number };

const playerOperation: fc.Arbitrary<PlayerOp> = fc.oneof(
  fc.nat({ max: 20_000 }).map((bytes) => ({ op: "play" as const, bytes })),
  fc.constant({ op: "clear" as const }),
  fc.constant({ op: "pause" as const }),
  fc.constant({ op: "resume" as const }),
  fc.nat({ max: 10 }).map((mark) => ({ op: "ack" as const, mark })),
  fc.nat({ max: 700 }).map((ms) => ({ op: "advance" as const, ms })),
);

/** `count` bytes of a pattern that shifts with `seed`, so any lost or repeated chunk shows. */
function patterned(count: number, seed: number): Uint8Array {
  const pcm = new Uint8Array(count);
  for (let index = 0; index < count; index++) {
    pcm[index] = (index * 7 + seed * 13 + (index >> 8)) & 0xff;
  }
  return pcm;
}

Deno.test("the player's frames follow the rules whatever it is asked to do", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(8000, 16000, 24000),
      fc.integer({ min: 1, max: 10 }).map((n) => n * 320),
      fc.array(playerOperation, { maxLength: 25 }),
      async (sampleRate, chunkBytes, operations) => {
        const clock = new FakeClock();
        const frames: Array<Record<string, unknown>> = [];
        const player = new Player({
          streamSid: "S",
          sampleRate: sampleRate as 8000,
          chunkBytes,
          leadMs: 300,
          maxBufferedBytes: 1 << 20,
          send: (text) => frames.push(JSON.parse(text)),
          bufferedAmount: () => 0,
          clock,
        });
        for (const step of operations) {
          if (step.op === "play") player.play(new Uint8Array(step.bytes));
          else if (step.op === "clear") player.clear();
          else if (step.op === "pause") player.pause();
          else if (step.op === "resume") player.resume();
          else if (step.op === "ack") player.acknowledge(`utt-${step.mark}`);
          else await clock.advance(step.ms);
        }
        player.resume();
        await clock.advance(60_000);
        player.stop();
        for (const frame of frames) {
          assertEquals(frame.stream_sid, "S");
          if (frame.event === "media") {
            const payload = (frame.media as { payload: string }).payload;
            assert(isValidChunkSize(Uint8Array.fromBase64(payload).length));
          }
        }
        assertEquals(clock.pending, 0);
      },
    ),
    { numRuns },
  );
});

Deno.test("pauses and resumes never lose, repeat or reorder what the caller hears", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(8000, 16000),
      fc.integer({ min: 1, max: 10 }).map((n) => n * 320),
      fc.array(
        fc.oneof(
          fc.nat({ max: 12_000 }).map((bytes) => ({
            op: "play" as const,
            bytes,
          })),
          fc.constant({ op: "pause" as const }),
          fc.constant({ op: "resume" as const }),
          fc.nat({ max: 700 }).map((ms) => ({ op: "advance" as const, ms })),
        ),
        { maxLength: 25 },
      ),
      async (sampleRate, chunkBytes, operations) => {
        const clock = new FakeClock();
        const marks: string[] = [];
        const exotel = new ExotelPlayback(sampleRate, {
          onMark: (name) => marks.push(name),
        });
        const player = new Player({
          streamSid: "S",
          sampleRate: sampleRate as 8000,
          chunkBytes,
          leadMs: 300,
          maxBufferedBytes: 1 << 20,
          send: (text) => {
            const frame = JSON.parse(text);
            const now = clock.now();
            if (frame.event === "media") {
              exotel.enqueue(Uint8Array.fromBase64(frame.media.payload), now);
            } else if (frame.event === "mark") {
              exotel.mark(frame.mark.name, now);
            } else if (frame.event === "clear") exotel.clear(now);
          },
          bufferedAmount: () => 0,
          clock,
        });
        const expected: Uint8Array[] = [];
        const playbacks: Promise<Playback>[] = [];
        for (const step of operations) {
          if (step.op === "play") {
            const pcm = patterned(step.bytes, expected.length);
            expected.push(padToAlignment(pcm));
            playbacks.push(player.play(pcm));
          } else if (step.op === "pause") player.pause();
          else if (step.op === "resume") player.resume();
          else await clock.advance(step.op === "advance" ? step.ms : 0);
          exotel.advance(clock.now());
          for (const name of marks.splice(0)) player.acknowledge(name);
        }
        player.resume();
        await clock.advance(60_000);
        exotel.advance(clock.now());
        for (const name of marks.splice(0)) player.acknowledge(name);
        const results = await Promise.all(playbacks);
        assert(results.every((result) => result.status === "played"));
        assertEquals(exotel.heard(), concat(expected));
        player.stop();
      },
    ),
    { numRuns },
  );
});

Deno.test("random and mutated frames never throw out of a call and never cross calls", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.boolean(), mutatedFrame("A")), { maxLength: 40 }),
      async (script) => {
        const clock = new FakeClock();
        const registry = new SessionRegistry();
        const ends = ["A", "B"].map((streamSid) => {
          const [server, exotel] = createSocketPair();
          const received: string[] = [];
          exotel.listen({
            message: (data) => received.push(String(data)),
            close() {},
          });
          const call = new Call({
            socket: server,
            clock,
            registry,
            settings: {
              chunkBytes: 640,
              leadMs: 300,
              maxBufferedBytes: 1 << 20,
              maxFrameBytes: 64 * 1024,
              maxPreStartBytes: 8000,
            },
            botName: "echo",
            createBot: createEchoBot,
            request: {
              sampleRate: 8000,
              remoteAddress: "127.0.0.1",
              streamSid: streamSid,
            },
          });
          exotel.send(
            JSON.stringify({
              event: "start",
              stream_sid: streamSid,
              start: { stream_sid: streamSid },
            }),
          );
          return { exotel, call, received, streamSid };
        });
        for (const [toSecond, text] of script) {
          const end = ends[toSecond ? 1 : 0];
          end.exotel.send(text.replaceAll('"A"', `"${end.streamSid}"`));
        }
        await clock.advance(10_000);
        for (const { received, streamSid, call } of ends) {
          for (const text of received) {
            assertEquals(JSON.parse(text).stream_sid, streamSid);
          }
          call.end("done");
          await call.ended;
        }
        await settle();
        assertEquals(registry.size, 0);
      },
    ),
    { numRuns },
  );
});
