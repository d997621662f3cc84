import {
  assert,
  assertEquals,
  assertFalse,
  assertStrictEquals,
} from "@std/assert";
import { AudioTrack } from "../src/bots/agent/audio_track.ts";
import { AudioCache } from "../src/bots/agent/audio_cache.ts";
import {
  Conversation,
  CUT_OFF_MARK,
  heardText,
} from "../src/bots/agent/conversation.ts";
import { CallOutcomes } from "../src/bots/agent/outcomes.ts";
import { TimelineLog, TurnTimeline } from "../src/bots/agent/timeline.ts";
import { type CallerTurn, TurnDetector } from "../src/bots/agent/turns.ts";
import { FakeClock } from "./fakes/clock.ts";

Deno.test("heardText keeps played pieces whole and the heard share of the one cut off", () => {
  const pieces = [
    { text: "Sure.", played: true, heardMs: 500, totalMs: 500 },
    {
      text: "Your table for four is booked for Monday.",
      played: false,
      heardMs: 1000,
      totalMs: 2000,
    },
    { text: "Anything else?", played: false, heardMs: 0, totalMs: 900 },
  ];
  assertEquals(heardText(pieces), `Sure. Your table for four${CUT_OFF_MARK}`);
  assertEquals(heardText(pieces.slice(0, 1)), "Sure.");
  assertEquals(
    heardText([{ ...pieces[1], heardMs: 0 }]),
    "",
    "nothing heard of the first piece",
  );
  assertEquals(
    heardText([{ ...pieces[1], heardMs: 2000 }, pieces[0]]),
    pieces[1].text,
    "a piece heard to its end but unconfirmed still ends what was heard",
  );
});

Deno.test("conversation sends the system prompt first and drops the oldest messages from a user turn", () => {
  const conversation = new Conversation("Be brief.", { maxMessages: 4 });
  conversation.addAssistant("Hello!");
  conversation.addUser("One");
  conversation.addAssistant("Reply one");
  conversation.addUser("Two");
  conversation.addAssistant("");
  assertEquals(conversation.history().length, 4);
  conversation.addAssistant("Reply two");
  assertEquals(conversation.messages(), [
    { role: "system", content: "Be brief." },
    { role: "user", content: "One" },
    { role: "assistant", content: "Reply one" },
    { role: "user", content: "Two" },
    { role: "assistant", content: "Reply two" },
  ]);
  conversation.addUser("Three");
  assertEquals(conversation.history()[0], { role: "user", content: "Two" });
});

Deno.test("audio cache returns what was stored per text, voice and rate, evicting the least recently used", () => {
  const cache = new AudioCache({ maxEntries: 2 });
  const key = (text: string, sampleRate = 8000) => ({
    provider: "deepgram",
    voice: "aura",
    language: "en-IN",
    sampleRate,
    text,
  });
  cache.set(key("a"), new Uint8Array(2));
  cache.set(key("b"), new Uint8Array(4));
  assertEquals(cache.get(key("a", 16000)), undefined);
  assertEquals(cache.get(key("a"))?.length, 2);
  cache.set(key("c"), new Uint8Array(6));
  assertEquals(cache.get(key("b")), undefined, "b was least recently used");
  assertEquals(cache.size, 2);
  assertEquals(cache.bytes, 8);
  const small = new AudioCache({ maxBytes: 4 });
  small.set(key("big"), new Uint8Array(6));
  assertEquals(small.size, 0, "audio larger than the cache is not kept");
});

Deno.test("audio cache creates audio once for callers asking at the same time, and not a failure", async () => {
  const cache = new AudioCache();
  const key = {
    provider: "sarvam",
    voice: "shubh",
    language: "hi-IN",
    sampleRate: 8000,
    text: "नमस्ते",
  };
  let created = 0;
  const create = () => {
    created++;
    return Promise.resolve(new Uint8Array(320));
  };
  const [a, b] = await Promise.all([
    cache.getOrCreate(key, create),
    cache.getOrCreate(key, create),
  ]);
  assertEquals(created, 1);
  assertStrictEquals(a, b);
  assertStrictEquals(await cache.getOrCreate(key, create), a);
  const other = { ...key, text: "failing" };
  assertEquals(
    await cache.getOrCreate(other, () => Promise.resolve(undefined)),
    undefined,
  );
  assertEquals(cache.get(other), undefined, "a failure is not cached");
  assertEquals(
    (await cache.getOrCreate(other, create))?.length,
    320,
    "and is retried",
  );
});

Deno.test("timeline reports each stage's duration once its two moments are known", () => {
  const timeline = new TurnTimeline({
    turn: 3,
    trigger: "stt",
    startedAt: Date.UTC(2025, 0, 1),
  });
  timeline.record("speechEnd", 1000);
  timeline.record("finalTranscript", 1300);
  timeline.record("firstToken", 1500);
  timeline.record("firstToken", 9999);
  timeline.record("firstTtsByte", 1600.04);
  timeline.record("firstMediaSent", 1602);
  assertEquals(timeline.summary(), {
    turn: 3,
    trigger: "stt",
    startedAt: "2025-01-01T00:00:00.000Z",
    outcome: "in_progress",
    speechEndToFinalMs: 300,
    finalToFirstTokenMs: 200,
    firstTokenToFirstTtsByteMs: 100,
    firstTtsByteToFirstMediaMs: 2,
    speechEndToFirstMediaMs: 602,
  });
  timeline.finish("interrupted");
  timeline.finish("answered");
  assertEquals(timeline.outcome, "interrupted");
});

Deno.test("timeline log keeps the last turns, numbered from 1", () => {
  const log = new TimelineLog(2);
  for (let i = 0; i < 3; i++) log.begin("stt", 0);
  assertEquals(log.recent().map((turn) => turn.turn), [2, 3]);
  assertEquals(log.count, 3);
});

Deno.test("call outcomes are remembered for a while by call id", () => {
  let now = 0;
  const outcomes = new CallOutcomes({
    ttlMs: 1000,
    clock: { now: () => now },
  });
  outcomes.set("CA1", "transfer");
  outcomes.set("CA2", "end_call");
  assertEquals(outcomes.get("CA1"), "transfer");
  now = 1000;
  assertEquals(outcomes.get("CA2"), undefined);
});

Deno.test("audio track readers get everything written, in order, while it grows", async () => {
  const track = new AudioTrack();
  const reads: number[] = [];
  let endedWith = -1;
  const collected = (async () => {
    const pieces: number[] = [];
    for await (
      const pcm of track.reader({
        onRead: (bytes) => reads.push(bytes),
        onEnd: (bytes) => endedWith = bytes,
      })
    ) pieces.push(pcm.length);
    return pieces;
  })();
  track.append(new Uint8Array(320));
  await Promise.resolve();
  track.append(new Uint8Array(640));
  track.append(new Uint8Array(0));
  track.end();
  assertEquals(await collected, [320, 640]);
  assertEquals(reads, [320, 960]);
  assertEquals(endedWith, 960);
  const again: number[] = [];
  for await (const pcm of track.reader()) again.push(pcm.length);
  assertEquals(again, [320, 640], "a later reader replays from the start");
  assertEquals(track.pcm().length, 960);
});

Deno.test("audio track readers end without error when the track fails or the reader is returned", async () => {
  const track = new AudioTrack();
  const iterator = track.reader()[Symbol.asyncIterator]();
  const waiting = iterator.next();
  await iterator.return?.();
  assertEquals(await waiting, { done: true, value: undefined });
  track.append(new Uint8Array(2));
  track.fail(new Error("vendor down"));
  const pieces: Uint8Array[] = [];
  for await (const pcm of track.reader()) pieces.push(pcm);
  assertEquals(pieces.length, 1);
  assert(track.error instanceof Error);
  track.append(new Uint8Array(2));
  assertEquals(track.bytes, 2, "nothing is added once ended");
});

function createDetector(clock: FakeClock) {
  const turns: CallerTurn[] = [];
  const detector = new TurnDetector({
    clock,
    timeoutMs: 1000,
    onTurn: (turn) => turns.push(turn),
  });
  return { detector, turns };
}

Deno.test("turn detector ends a turn on the vendor's endpoint with all its finals", async () => {
  const clock = new FakeClock();
  const { detector, turns } = createDetector(clock);
  detector.partial("I would");
  assertEquals(detector.text, "I would");
  detector.final("I would like", false);
  await clock.advance(100);
  detector.final("a table.", false);
  assertEquals(turns, []);
  detector.endOfTurn();
  assertEquals(turns, [{
    text: "I would like a table.",
    trigger: "stt",
    finalAt: 100,
  }]);
  detector.endOfTurn();
  assertEquals(turns.length, 1, "an end of turn with nothing new is ignored");
  detector.final("Thanks", true);
  assertEquals(turns[1].text, "Thanks");
});

Deno.test("turn detector falls back to the voice-activity detector when the vendor's endpoint does not come", async () => {
  const clock = new FakeClock();
  const { detector, turns } = createDetector(clock);
  detector.partial("Book it for");
  detector.speechEnded();
  await clock.advance(500);
  detector.speechStarted();
  await clock.advance(2000);
  assertEquals(turns, [], "the caller went on speaking");
  detector.partial("Book it for Monday");
  detector.speechEnded();
  await clock.advance(1000);
  assertEquals(turns, [{ text: "Book it for Monday", trigger: "vad" }]);
  detector.final("Book it for Monday.", true);
  assertEquals(turns.length, 1, "the late final of that turn is dropped");
  detector.speechStarted();
  detector.final("Thanks.", true);
  assertEquals(turns.length, 2);
  assertFalse(clock.pending > 0);
});

Deno.test("turn detector reports speech without a transcript as an empty turn", async () => {
  const clock = new FakeClock();
  const { detector, turns } = createDetector(clock);
  detector.speechEnded();
  await clock.advance(1000);
  assertEquals(turns, [{ text: "", trigger: "vad" }]);
  detector.final("Hello.", true);
  assertStrictEquals(turns[1].text, "Hello.");
});
