/**
 * Turn-taking as a pure machine: sequences of events (caller voice, words,
 * keys, replies starting and ending, time passing on a fake clock) and the
 * actions they must produce. No sockets, no vendors, no timers of the
 * runtime.
 */
import { assertEquals } from "@std/assert";
import { DEFAULT_BARGE_IN } from "../src/bots/agent/barge_in.ts";
import {
  keypadText,
  MAX_KEYPAD_TURN_DIGITS,
  type ReplyRole,
  type TurnAction,
  TurnTaking,
  type TurnTakingBargeIn,
} from "../src/bots/agent/turn_taking.ts";
import type { SilenceConfig } from "../src/bots/agent/silence.ts";
import type { SpeechEvent } from "../src/providers/stt/speech_to_text.ts";
import { FakeClock } from "./fakes/clock.ts";

/** One thing that happens on the call. */
type Step =
  /** A reply begins (speaking from now unless `speaking: false`). */
  | { reply: ReplyRole; said?: string; speaking?: boolean }
  /** The current reply ends. */
  | { finish: "done" | "interrupted" | "failed" | "stopped"; action?: boolean }
  /** The detector analysed audio up to `atMs`; `voicedMs` of it stood out as the caller's voice. */
  | { heard: { atMs: number; voicedMs?: number; speech?: "start" | "end" } }
  /** Speech-to-text reported an event. */
  | { stt: SpeechEvent }
  /** Speech-to-text failed. */
  | { sttFailed: true }
  /** The caller pressed a key. */
  | { key: string }
  /** The bot's echo explained this much more of the caller's audio. */
  | { echoMs: number }
  /** Time passes on the clock (timers fire). */
  | { advance: number }
  /** The call ends. */
  | { stop: true };

interface Case {
  name: string;
  bargeIn?: Partial<TurnTakingBargeIn>;
  silence?: SilenceConfig;
  steps: Step[];
  expect: TurnAction[];
}

interface FakeReply {
  active: boolean;
  cancelled: boolean;
  speaking: boolean;
  speakingSince: number | undefined;
  said: string;
}

/** Runs `steps` through a fresh machine on a fake clock; returns its actions. */
async function run(
  steps: Step[],
  options: Pick<Case, "bargeIn" | "silence"> = {},
): Promise<TurnAction[]> {
  const clock = new FakeClock();
  const voice = { audioMs: 0, foregroundMs: 0, inSpeech: false };
  const echo = { echoMs: 0 };
  const actions: TurnAction[] = [];
  let reply: FakeReply | undefined;
  const machine = new TurnTaking({
    clock,
    voice,
    echo,
    bargeIn: { ...DEFAULT_BARGE_IN, afterMs: 0, ...options.bargeIn },
    silence: options.silence ?? { repromptS: 0, reprompts: 0 },
    turnTimeoutMs: 1000,
    dtmfTimeoutMs: 1500,
    onAction(action) {
      actions.push(action);
      // What the agent does with a cut: the reply knows it is cancelled.
      if (action.type === "interrupt" && reply) reply.cancelled = true;
    },
  });
  for (const step of steps) {
    if ("reply" in step) {
      const speaking = step.speaking ?? true;
      reply = {
        active: true,
        cancelled: false,
        speaking,
        speakingSince: speaking ? clock.now() : undefined,
        said: step.said ?? "Your table for two is booked for seven.",
      };
      machine.replyStarted(reply, step.reply);
    } else if ("finish" in step) {
      const finished = reply as FakeReply;
      finished.active = false;
      machine.replyFinished(finished, finished.said);
      machine.replySettled(finished, {
        status: step.finish,
        action: step.action ?? false,
      });
    } else if ("heard" in step) {
      const { atMs, voicedMs = 0, speech } = step.heard;
      const before = voice.audioMs;
      voice.audioMs = atMs;
      voice.foregroundMs += voicedMs;
      if (voicedMs > 0) machine.voiced(atMs);
      await clock.advance(atMs - before);
      if (speech === "start") voice.inSpeech = true;
      if (speech === "end") voice.inSpeech = false;
      machine.analysed(
        speech === undefined
          ? []
          : speech === "start"
          ? [{ type: "speech_start", atMs }]
          : [{ type: "speech_end", atMs, durationMs: 0, voicedMs: 0 }],
      );
    } else if ("stt" in step) {
      machine.speech(step.stt);
    } else if ("sttFailed" in step) {
      machine.speechFailed();
    } else if ("key" in step) {
      machine.key(step.key);
    } else if ("echoMs" in step) {
      echo.echoMs += step.echoMs;
    } else if ("advance" in step) {
      await clock.advance(step.advance);
    } else {
      machine.stop();
    }
  }
  machine.stop();
  assertEquals(clock.pending, 0, "every timer is cancelled at stop");
  return actions;
}

const final = (text: string, endOfTurn = true): Step => ({
  stt: { type: "final", text, endOfTurn },
});

const cases: Case[] = [
  {
    name:
      "caller voice over the bot pauses it at 100 ms and cuts it off at 400 ms",
    steps: [
      { reply: "answer" },
      { heard: { atMs: 120, voicedMs: 120, speech: "start" } },
      { heard: { atMs: 300, voicedMs: 180 } },
      { heard: { atMs: 420, voicedMs: 120 } },
    ],
    expect: [
      { type: "pause", voicedMs: 120 },
      { type: "interrupt", reason: "speech" },
    ],
  },
  {
    name: "a real word cuts the bot off before 400 ms of voice",
    steps: [
      { reply: "answer" },
      { heard: { atMs: 120, voicedMs: 120, speech: "start" } },
      { stt: { type: "partial", text: "Wait" } },
    ],
    expect: [
      { type: "pause", voicedMs: 120 },
      { type: "interrupt", reason: "words" },
    ],
  },
  {
    name:
      "a backchannel pauses, resumes as soon as its transcript shows it, and is not a turn",
    steps: [
      { reply: "answer" },
      { heard: { atMs: 200, voicedMs: 200, speech: "start" } },
      { heard: { atMs: 340, voicedMs: 100, speech: "end" } },
      final("Hmm."),
    ],
    expect: [
      { type: "pause", voicedMs: 200 },
      { type: "resume", reason: "backchannel" },
      { type: "not_a_turn", reason: "backchannel" },
    ],
  },
  {
    name: "a pause with no words resumes after 600 ms of the caller's quiet",
    steps: [
      { reply: "answer" },
      { heard: { atMs: 150, voicedMs: 150, speech: "start" } },
      { heard: { atMs: 500, speech: "end" } },
      { heard: { atMs: 700 } },
      { heard: { atMs: 760 } },
    ],
    expect: [
      { type: "pause", voicedMs: 150 },
      { type: "resume", reason: "silence" },
    ],
  },
  {
    name: "a reply that ends while paused leaves no pause behind",
    steps: [
      { reply: "answer" },
      { heard: { atMs: 150, voicedMs: 150, speech: "start" } },
      { finish: "done" },
    ],
    expect: [
      { type: "pause", voicedMs: 150 },
      { type: "resume", reason: "reply_over" },
    ],
  },
  {
    name:
      "voice that does not stand out from the background (babble, TV) neither pauses nor cuts",
    steps: [
      { reply: "answer" },
      { heard: { atMs: 2000, voicedMs: 0, speech: "start" } },
      { heard: { atMs: 4000, voicedMs: 0 } },
    ],
    expect: [],
  },
  {
    name:
      "barge-in off: caller voice never pauses or cuts, and the turn waits for the reply",
    bargeIn: { enabled: false },
    steps: [
      { reply: "answer" },
      { heard: { atMs: 800, voicedMs: 800, speech: "start" } },
      { stt: { type: "partial", text: "Stop talking" } },
      { heard: { atMs: 1400, speech: "end" } },
      final("Stop talking please"),
    ],
    expect: [
      {
        type: "answer",
        turn: {
          text: "Stop talking please",
          trigger: "stt",
          finalAt: 1400,
          speechEndAt: 800,
          interrupts: false,
        },
      },
    ],
  },
  {
    name:
      "the greeting's first AGENT_BARGE_IN_AFTER_MS hold off voice and words; later voice pauses",
    bargeIn: { afterMs: 600 },
    steps: [
      { reply: "greeting" },
      { heard: { atMs: 300, voicedMs: 300, speech: "start" } },
      { stt: { type: "partial", text: "Hello?" } },
      { heard: { atMs: 500, voicedMs: 100 } },
      { heard: { atMs: 700, voicedMs: 150 } },
      { stt: { type: "partial", text: "Hello?" } },
    ],
    expect: [{ type: "pause", voicedMs: 150 }],
  },
  {
    name:
      "words said while the greeting was protected do not count; new ones do",
    bargeIn: { afterMs: 600 },
    steps: [
      { reply: "greeting" },
      { stt: { type: "partial", text: "Hello" } },
      { advance: 700 },
      { stt: { type: "partial", text: "Hello" } },
      { stt: { type: "partial", text: "Hello wait" } },
    ],
    expect: [{ type: "interrupt", reason: "words" }],
  },
  {
    name:
      "a turn ended while the greeting is protected waits for the greeting instead of cutting it",
    bargeIn: { afterMs: 600 },
    steps: [
      { reply: "greeting" },
      { advance: 200 },
      final("Hello, is this the clinic?"),
    ],
    expect: [
      {
        type: "answer",
        turn: {
          text: "Hello, is this the clinic?",
          trigger: "stt",
          finalAt: 200,
          interrupts: false,
        },
      },
    ],
  },
  {
    name:
      "a caller turn after the bot has finished is answered with its timings",
    steps: [
      { reply: "greeting" },
      { finish: "done" },
      { heard: { atMs: 1000, voicedMs: 0 } },
      { heard: { atMs: 1400, voicedMs: 400, speech: "start" } },
      { heard: { atMs: 2000, voicedMs: 0, speech: "end" } },
      { advance: 150 },
      final("Book a table"),
    ],
    expect: [
      {
        type: "answer",
        turn: {
          text: "Book a table",
          trigger: "stt",
          finalAt: 2150,
          speechEndAt: 1400,
          interrupts: true,
        },
      },
    ],
  },
  {
    name:
      "without the vendor's end of turn, the detector's silence ends it after the timeout",
    steps: [
      { heard: { atMs: 600, voicedMs: 600, speech: "start" } },
      final("Book a table", false),
      { heard: { atMs: 900, speech: "end" } },
      { advance: 999 },
      { advance: 1 },
      // Finals still coming for that turn are not a second turn.
      final("for two", true),
    ],
    expect: [
      {
        type: "answer",
        turn: {
          text: "Book a table",
          trigger: "vad",
          finalAt: 600,
          speechEndAt: 600,
          interrupts: true,
        },
      },
    ],
  },
  {
    name: "a turn with words over a speaking reply cuts it off first",
    steps: [
      { reply: "answer", said: "The menu today has" },
      { stt: { type: "speech_started" } },
      final("Actually cancel it"),
    ],
    expect: [
      { type: "interrupt", reason: "words" },
      {
        type: "answer",
        turn: {
          text: "Actually cancel it",
          trigger: "stt",
          finalAt: 0,
          interrupts: true,
        },
      },
    ],
  },
  {
    name: "the language speech-to-text heard comes with the turn",
    steps: [
      {
        stt: {
          type: "final",
          text: "मुझे टेबल चाहिए",
          endOfTurn: true,
          language: "hi-IN",
        },
      },
    ],
    expect: [
      {
        type: "answer",
        turn: {
          text: "मुझे टेबल चाहिए",
          trigger: "stt",
          finalAt: 0,
          language: "hi-IN",
          interrupts: true,
        },
      },
    ],
  },
  {
    name:
      "the bot's own words coming back as echo are not a turn and do not cut it",
    steps: [
      { reply: "answer", said: "Your table is booked" },
      { echoMs: 300 },
      { heard: { atMs: 200, voicedMs: 0, speech: "start" } },
      { stt: { type: "partial", text: "your table" } },
      { heard: { atMs: 900, speech: "end" } },
      final("your table is booked"),
    ],
    expect: [{ type: "not_a_turn", reason: "echo" }],
  },
  {
    name:
      "without echo on the line the same words are the caller's and cut the bot off",
    steps: [
      { reply: "answer", said: "Your table is booked" },
      { heard: { atMs: 200, voicedMs: 0, speech: "start" } },
      { stt: { type: "partial", text: "your table" } },
    ],
    expect: [{ type: "interrupt", reason: "words" }],
  },
  {
    name: "keys cut the bot off and are answered after the keypad pause",
    steps: [
      { reply: "answer" },
      { key: "4" },
      { advance: 1000 },
      { key: "2" },
      { advance: 1499 },
      { advance: 1 },
    ],
    expect: [
      { type: "interrupt", reason: "dtmf" },
      {
        type: "answer",
        turn: {
          text: "Keypad input: 42",
          trigger: "dtmf",
          finalAt: 2500,
          interrupts: true,
        },
      },
    ],
  },
  {
    name: "# answers the keys at once",
    steps: [{ key: "1" }, { key: "#" }],
    expect: [
      {
        type: "answer",
        turn: {
          text: "Keypad input: 1#",
          trigger: "dtmf",
          finalAt: 0,
          interrupts: true,
        },
      },
    ],
  },
  {
    name: "the longest run of keys is answered without waiting",
    steps: Array.from({ length: MAX_KEYPAD_TURN_DIGITS }, () => ({ key: "7" })),
    expect: [
      {
        type: "answer",
        turn: {
          text: keypadText("7".repeat(MAX_KEYPAD_TURN_DIGITS)),
          trigger: "dtmf",
          finalAt: 0,
          interrupts: true,
        },
      },
    ],
  },
  {
    name:
      "speech with no transcript while speech-to-text is down asks for the fallback line",
    steps: [
      { sttFailed: true },
      { heard: { atMs: 600, voicedMs: 600, speech: "start" } },
      { heard: { atMs: 900, speech: "end" } },
      { advance: 1000 },
    ],
    expect: [{ type: "fallback" }],
  },
  {
    name:
      "speech with no transcript while speech-to-text works is noise: nothing",
    steps: [
      { heard: { atMs: 600, voicedMs: 600, speech: "start" } },
      { heard: { atMs: 900, speech: "end" } },
      { advance: 1000 },
    ],
    expect: [],
  },
  {
    name:
      "silence: re-prompt after 8 s, again, then goodbye, and the hang-up once it is heard",
    silence: { repromptS: 8, reprompts: 2 },
    steps: [
      { reply: "greeting" },
      { finish: "done" },
      { advance: 7999 },
      { advance: 1 },
      { reply: "reprompt" },
      { finish: "done" },
      { advance: 8000 },
      { reply: "reprompt" },
      { finish: "done" },
      { advance: 8000 },
      { reply: "goodbye" },
      { finish: "done" },
    ],
    expect: [
      { type: "silence_line", kind: "reprompt", count: 1 },
      { type: "silence_line", kind: "reprompt", count: 2 },
      { type: "silence_line", kind: "goodbye", count: 2 },
      { type: "hang_up", reason: "silence", reprompts: 2 },
    ],
  },
  {
    name:
      "silence: the caller's turn starts the count over; no silence counts while a reply runs",
    silence: { repromptS: 8, reprompts: 1 },
    steps: [
      { reply: "greeting" },
      { finish: "done" },
      { advance: 8000 },
      { reply: "reprompt" },
      { finish: "done" },
      { advance: 4000 },
      final("Yes I am here"),
      { reply: "answer", speaking: false },
      { advance: 30_000 },
      { finish: "done" },
      { advance: 8000 },
    ],
    expect: [
      { type: "silence_line", kind: "reprompt", count: 1 },
      {
        type: "answer",
        turn: {
          text: "Yes I am here",
          trigger: "stt",
          finalAt: 12_000,
          interrupts: true,
        },
      },
      { type: "silence_line", kind: "reprompt", count: 1 },
    ],
  },
  {
    name:
      "silence: a reply that ends the call starts no count, and 0 s turns re-prompts off",
    silence: { repromptS: 8, reprompts: 2 },
    steps: [
      { reply: "answer" },
      { finish: "done", action: true },
      { advance: 60_000 },
    ],
    expect: [],
  },
  {
    name: "after the call ends nothing more is decided",
    silence: { repromptS: 8, reprompts: 2 },
    steps: [
      { reply: "answer" },
      { key: "5" },
      { stop: true },
      { heard: { atMs: 600, voicedMs: 600, speech: "start" } },
      final("Hello"),
      { advance: 60_000 },
    ],
    expect: [{ type: "interrupt", reason: "dtmf" }],
  },
];

for (const { name, steps, expect, bargeIn, silence } of cases) {
  Deno.test(`turn-taking: ${name}`, async () => {
    assertEquals(await run(steps, { bargeIn, silence }), expect);
  });
}

Deno.test("turn-taking: live state shows the pause and the words not answered yet", () => {
  const voice = { audioMs: 0, foregroundMs: 0, inSpeech: false };
  const machine = new TurnTaking({
    clock: new FakeClock(),
    voice,
    echo: { echoMs: 0 },
    bargeIn: { ...DEFAULT_BARGE_IN, afterMs: 0 },
    silence: { repromptS: 0, reprompts: 0 },
    turnTimeoutMs: 1000,
    dtmfTimeoutMs: 1500,
    onAction() {},
  });
  machine.replyStarted({
    active: true,
    cancelled: false,
    speaking: true,
    speakingSince: 0,
    said: "Hello",
  }, "answer");
  Object.assign(voice, { audioMs: 150, foregroundMs: 150, inSpeech: true });
  machine.analysed([{ type: "speech_start", atMs: 0 }]);
  machine.speech({ type: "partial", text: "hmm" });
  assertEquals([machine.paused, machine.heard, machine.quiet], [
    true,
    "hmm",
    false,
  ]);
  machine.stop();
});
