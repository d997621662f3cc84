import { assert, assertEquals, assertFalse } from "@std/assert";
import { VoiceActivityDetector } from "../src/audio/vad.ts";
import { decodeWav } from "../src/audio/wav.ts";
import {
  BargeInGuard,
  DEFAULT_BACKCHANNELS,
  DEFAULT_BARGE_IN,
  isBackchannel,
  substantiveWords,
  words,
} from "../src/bots/agent/barge_in.ts";
import {
  cleanForSpeech,
  SentenceSplitter,
} from "../src/bots/agent/sentences.ts";
import { AGENT_TOOLS, parseToolCall } from "../src/bots/agent/tools.ts";
import { CallTranscript } from "../src/bots/agent/transcript.ts";

function split(deltas: string[], splitter = new SentenceSplitter()): string[] {
  const pieces = deltas.flatMap((delta) => splitter.push(delta));
  return [...pieces, ...splitter.flush()];
}

Deno.test("splitter cuts a full stop after a word at once, without waiting for the next delta", () => {
  const splitter = new SentenceSplitter();
  assertEquals(splitter.push("Sure"), []);
  assertEquals(splitter.push("."), ["Sure."]);
  assertEquals(splitter.push(" नमस्ते जी."), ["नमस्ते जी."]);
  // After a digit, an abbreviation, an initial or a dotted form the full
  // stop may not end the sentence: the next delta decides.
  for (const ambiguous of ["It costs 3.", "Ask Dr.", "By A.", "Say e.g."]) {
    const waiting = new SentenceSplitter();
    assertEquals(waiting.push(ambiguous), [], ambiguous);
  }
  assertEquals(splitter.push("Go on…"), []);
});

Deno.test("splitter cuts streamed text at sentence ends as soon as the next delta shows the boundary", () => {
  const splitter = new SentenceSplitter();
  assertEquals(splitter.push("Sure"), []);
  assertEquals(splitter.push(" 5."), []);
  assertEquals(splitter.push(" Your table"), ["Sure 5."]);
  assertEquals(splitter.push(" is booked! Anything"), [
    "Your table is booked!",
  ]);
  assertEquals(splitter.flush(), ["Anything"]);
});

Deno.test("splitter cuts at a question or exclamation mark without waiting for more text", () => {
  const splitter = new SentenceSplitter();
  assertEquals(splitter.push("Really?"), ["Really?"]);
  assertEquals(splitter.push(" Great! It costs 3."), ["Great!"]);
  assertEquals(splitter.push("50."), []);
  assertEquals(splitter.flush(), ["It costs 3.50."]);
});

Deno.test("splitter keeps decimals, times, abbreviations and initials inside a sentence", () => {
  assertEquals(
    split([
      "It costs Rs. 2.50 per minute at 7.30 pm. Dr. Rao and A. P. Singh agree. Done.",
    ]),
    [
      "It costs Rs. 2.50 per minute at 7.30 pm.",
      "Dr. Rao and A. P. Singh agree.",
      "Done.",
    ],
  );
});

Deno.test("splitter cuts Hindi at the danda and keeps closing quotes with their sentence", () => {
  assertEquals(split(["नमस्ते। आप कैसे हैं? "]), ["नमस्ते।", "आप कैसे हैं?"]);
  assertEquals(split(['He said "stop." Then', " left."]), [
    'He said "stop."',
    "Then left.",
  ]);
});

Deno.test("splitter cuts a long first clause early and later clauses only when longer", () => {
  // The first piece may end at a comma once 24 characters long.
  assertEquals(
    split(["Thanks for waiting so patiently, I found your booking for Monday"]),
    [
      "Thanks for waiting so patiently,",
      "I found your booking for Monday",
    ],
  );
  // "Sure," is too short to stand alone.
  assertEquals(split(["Sure, I can help with that. "]), [
    "Sure, I can help with that.",
  ]);
});

Deno.test("splitter cuts text without boundaries at a space once it reaches the limit", () => {
  const splitter = new SentenceSplitter({ maxChars: 20 });
  const pieces = split(["one two three four five six seven eight"], splitter);
  assertEquals(pieces, ["one two three four", "five six seven eight"]);
  assert(pieces.every((piece) => piece.length <= 20));
});

Deno.test("splitter drops pieces with nothing to say and cuts at line breaks", () => {
  assertEquals(split(["... \n- First item\n- Second item\n"]), [
    "First item",
    "Second item",
  ]);
});

Deno.test("cleanForSpeech removes Markdown and link targets", () => {
  assertEquals(
    cleanForSpeech("## **Yes!** See [our menu](https://example.com) `now`."),
    "Yes! See our menu now.",
  );
});

Deno.test("cleanForSpeech drops emphasis underscores but keeps those inside an address", () => {
  assertEquals(
    cleanForSpeech("_Yes_, write to __rahul_24@exo.in__ now."),
    "Yes, write to rahul_24@exo.in now.",
  );
});

Deno.test("words lowercases, strips punctuation and keeps Devanagari", () => {
  assertEquals(words("Uh-huh, OK. हाँ जी!"), ["uhhuh", "ok", "हाँ", "जी"]);
  assertEquals(substantiveWords("Hmm, wait a second", DEFAULT_BACKCHANNELS), 3);
});

Deno.test("isBackchannel accepts acknowledgements only", () => {
  for (const text of ["Hmm.", "Okay.", "Haan ji", "Hmm. Okay.", "ठीक है"]) {
    assert(isBackchannel(text, DEFAULT_BACKCHANNELS), text);
  }
  for (const text of ["Wait, stop.", "No", "", "Okay, but not Monday"]) {
    assertFalse(isBackchannel(text, DEFAULT_BACKCHANNELS), text);
  }
});

Deno.test("guard interrupts on sustained voice or one real word, never on a backchannel", () => {
  const guard = new BargeInGuard(DEFAULT_BARGE_IN);
  assertFalse(guard.shouldInterrupt({ voicedMs: 340, transcript: "" }));
  assertFalse(guard.shouldInterrupt({ voicedMs: 340, transcript: "Hmm." }));
  assert(guard.shouldInterrupt({ voicedMs: 400, transcript: "" }));
  assert(guard.shouldInterrupt({ voicedMs: 100, transcript: "Wait" }));
  const wordsOff = new BargeInGuard({ ...DEFAULT_BARGE_IN, minWords: 0 });
  assertFalse(wordsOff.shouldInterrupt({ voicedMs: 100, transcript: "Wait" }));
  const off = new BargeInGuard({ ...DEFAULT_BARGE_IN, enabled: false });
  assertFalse(off.shouldInterrupt({ voicedMs: 5000, transcript: "Stop!" }));
});

function voicedPerUtterance(name: string): number[] {
  const wav = decodeWav(
    Deno.readFileSync(new URL(`./fixtures/audio/${name}`, import.meta.url)),
  );
  const vad = new VoiceActivityDetector(wav.sampleRate);
  const peaks: number[] = [];
  let peak = 0;
  for (let at = 0; at < wav.pcm.length; at += 320) {
    for (const event of vad.push(wav.pcm.subarray(at, at + 320))) {
      if (event.type === "speech_end") {
        peaks.push(peak);
        peak = 0;
      }
    }
    peak = Math.max(peak, vad.speechMs);
  }
  for (const event of vad.flush()) {
    if (event.type === "speech_end") peaks.push(peak);
  }
  return peaks;
}

Deno.test("guard with the defaults ignores the backchannel fixture and is interrupted by sustained speech", () => {
  const guard = new BargeInGuard(DEFAULT_BARGE_IN);
  const backchannel = voicedPerUtterance("backchannel_8000.wav");
  assertEquals(backchannel.length, 2);
  for (const voicedMs of backchannel) {
    assertFalse(guard.shouldInterrupt({ voicedMs, transcript: "" }));
  }
  // "Wait, stop. Actually I meant next Monday.": the last utterance is long.
  const interrupt = voicedPerUtterance("interrupt_8000.wav");
  assert(
    guard.shouldInterrupt({ voicedMs: interrupt.at(-1) ?? 0, transcript: "" }),
  );
  assert(
    guard.shouldInterrupt({ voicedMs: interrupt[0], transcript: "Wait," }),
    "the words catch what the voice alone does not",
  );
});

Deno.test("tools are described in the OpenAI function format the adapter sends", () => {
  assertEquals(AGENT_TOOLS.map((tool) => tool.name), ["end_call", "transfer"]);
  for (const tool of AGENT_TOOLS) {
    assertEquals(tool.parameters.type, "object");
    assert(tool.description.length > 20);
  }
});

Deno.test("parseToolCall reads end_call and transfer, tolerating garbled arguments", () => {
  assertEquals(
    parseToolCall({
      id: "c1",
      name: "end_call",
      arguments: '{"goodbye":" Bye! ","reason":"done"}',
    }),
    { kind: "end_call", callId: "c1", say: "Bye!", reason: "done" },
  );
  assertEquals(
    parseToolCall({ id: "c2", name: "transfer", arguments: "{not json" }),
    { kind: "transfer", callId: "c2" },
  );
  assertEquals(
    parseToolCall({ id: "c3", name: "lookup", arguments: "{}" }),
    { kind: "unknown", callId: "c3", name: "lookup" },
  );
});

Deno.test("the call transcript keeps every line up to its bound, with what was heard of cut-off replies", () => {
  const log = new CallTranscript(3);
  log.bot({ said: "Hello!", heard: "Hello!", interrupted: false }, 10);
  log.caller("Book a table.", 2500.4);
  log.bot({
    said: "Sure. For how many people?",
    heard: "Sure.",
    interrupted: true,
  }, 3100);
  log.bot({ said: "", heard: "", interrupted: true }, 3200);
  assertEquals(log.entries(), [
    { role: "bot", text: "Hello!", atMs: 10 },
    { role: "caller", text: "Book a table.", atMs: 2500 },
    {
      role: "bot",
      text: "Sure. For how many people?",
      heardText: "Sure.",
      interrupted: true,
      atMs: 3100,
    },
  ]);
  log.caller("Four.", 4000);
  log.caller("At eight.", 4100);
  assertEquals(log.entries().map((line) => line.text), [
    "Sure. For how many people?",
    "Four.",
    "At eight.",
  ]);
});
