/**
 * A call's fixed lines (fallback, closing, transfer): from the cache, from
 * the voice, or from the bundled recordings when the voice is down; the
 * failed-turn limit picks the closing line. No vendors: the voice is a stub.
 */
import { assertEquals, assertNotEquals } from "@std/assert";
import { getLogger } from "@logtape/logtape";
import { AudioCache } from "../src/bots/agent/audio_cache.ts";
import { LineAudio, type LineTexts } from "../src/bots/agent/line_audio.ts";
import { RECORDED_LINES } from "../src/bots/agent/recorded_lines.ts";
import { ProviderError } from "../src/providers/provider_error.ts";
import type { TextToSpeech } from "../src/providers/tts/text_to_speech.ts";

const TEXTS: LineTexts = {
  fallbackText: "Sorry, one moment please.",
  transferText: "Connecting you to a colleague.",
  maxFailedTurns: 3,
  onFailure: "hangup",
};

/** A voice that says every text as `bytes` of audio, or fails; counts its requests. */
function stubVoice(options: { bytes?: number; down?: boolean } = {}) {
  const asked: string[] = [];
  const tts: TextToSpeech = {
    name: "stub",
    voice: "v1",
    synthesize(text, { sampleRate }) {
      asked.push(text);
      if (options.down) {
        return Promise.reject(
          new ProviderError("stub", {
            kind: "network",
            message: "Voice unreachable",
          }),
        );
      }
      const pcm = new Uint8Array(options.bytes ?? 1600).fill(7);
      return Promise.resolve({
        sampleRate,
        audio: (async function* () {
          yield pcm;
        })(),
      });
    },
  };
  return { tts, asked };
}

function lines(
  tts: TextToSpeech,
  options: { cache?: AudioCache; texts?: Partial<LineTexts> } = {},
) {
  return new LineAudio({
    cache: options.cache ?? new AudioCache(),
    sampleRate: 8000,
    texts: { ...TEXTS, ...options.texts },
    log: getLogger(["exovoice", "test"]),
    voice: () => ({ tts, language: "en-IN" }),
  });
}

Deno.test("line audio: the fallback line is synthesised once and then served from the cache shared by calls", async () => {
  const { tts, asked } = stubVoice();
  const cache = new AudioCache();
  const first = await lines(tts, { cache }).fallback();
  const second = await lines(tts, { cache }).fallback();
  assertEquals([first.text, first.pcm.length], [TEXTS.fallbackText, 1600]);
  assertEquals(second.pcm, first.pcm);
  assertEquals(asked, [TEXTS.fallbackText]);
});

Deno.test("line audio: with the voice down the caller hears the bundled recording, never silence", async () => {
  const { tts } = stubVoice({ down: true });
  const line = await lines(tts).fallback();
  assertEquals(line.text, RECORDED_LINES.fallback.text);
  assertNotEquals(line.pcm.length, 0);
});

Deno.test("line audio: failed turns get the fallback line until the last one allowed, which gets the closing or transfer line", async () => {
  const cases: {
    failedTurns: number;
    texts?: Partial<LineTexts>;
    text: string;
  }[] = [
    { failedTurns: 0, text: TEXTS.fallbackText },
    { failedTurns: 1, text: TEXTS.fallbackText },
    { failedTurns: 2, text: RECORDED_LINES.closing.text },
    {
      failedTurns: 2,
      texts: { onFailure: "transfer" },
      text: TEXTS.transferText,
    },
    { failedTurns: 50, texts: { maxFailedTurns: 0 }, text: TEXTS.fallbackText },
  ];
  for (const { failedTurns, texts, text } of cases) {
    const { tts } = stubVoice();
    const line = await lines(tts, { texts }).forFailedTurn(failedTurns);
    assertEquals(line.text, text, `after ${failedTurns} failed turns`);
  }
});
