/**
 * Language switching (`AGENT_LANGUAGES`, `TTS_VOICES`): speech-to-text is
 * asked to detect the language, the fakes report it the vendors' way, and
 * the agent tells the model and answers in that language's voice.
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { concat } from "@std/bytes";
import { languageName } from "../src/bots/agent/agent.ts";
import { loadAgentFile } from "../src/bots/agent/agent_file.ts";
import {
  loadAgentConfig,
  parseLanguages,
  parseVoices,
} from "../src/bots/agent/config.ts";
import { spokenForm } from "../src/bots/agent/spoken_forms.ts";
import { ConfigError } from "../src/env_values.ts";
import { DeepgramStt } from "../src/providers/stt/deepgram.ts";
import { SarvamStt } from "../src/providers/stt/sarvam.ts";
import {
  matchLanguage,
  type SpeechEvent,
} from "../src/providers/stt/speech_to_text.ts";
import { simulateCall } from "../tools/simulator.ts";
import { type AgentFakes, fixturePcm, until } from "./fakes/agent_call.ts";
import { startAgentServer } from "./fakes/bot_server.ts";
import { textReply } from "./fakes/openai_server.ts";
import { FakeSttServer, type SttVendor } from "./fakes/stt_servers.ts";

const LEAD_MS = 1000;
const HINDI_TEXT = "नमस्ते। मुझे कल के लिए अपॉइंटमेंट चाहिए।";
const HINDI_TURN = {
  text: HINDI_TEXT,
  language: "hi-IN",
  speechStartMs: 400 + LEAD_MS,
  turnMs: 4800 + LEAD_MS,
};
const SWITCHING = {
  AGENT_LANGUAGE: "en-IN",
  AGENT_LANGUAGES: "en-IN,hi-IN",
  TTS_VOICES: "en-IN:anushka,hi-IN:abhilash",
  TTS_MODEL: "bulbul:v2",
};

function silence(ms: number, rate: number): Uint8Array {
  return new Uint8Array(rate / 1000 * ms * 2);
}

const FALLBACK =
  "Sorry, I'm having trouble right now. Could you please say that again?";

/** What the TTS fake was asked to say, with its language and voice, but the fallback line made in the background. */
function ttsRequests(vendors: AgentFakes) {
  return vendors.tts.requests.filter((request) =>
    (request.body as Record<string, unknown>).text !== FALLBACK
  ).map((request) => {
    const body = request.body as Record<string, unknown>;
    return {
      text: body.text,
      language: body.target_language_code,
      speaker: body.speaker,
    };
  });
}

for (const stt of ["deepgram", "sarvam"] as SttVendor[]) {
  Deno.test(`${stt}: a caller who answers in Hindi is answered in Hindi, in the Hindi voice, with Hindi spoken forms`, async () => {
    const reply = "जी हाँ, फ़ीस ₹1,50,000 है।";
    await using agent = await startAgentServer({
      stt,
      tts: "sarvam",
      script: { turns: [HINDI_TURN] },
      replies: [textReply([reply])],
      env: SWITCHING,
    });
    const hindi = await fixturePcm("hindi_en_8000.wav");
    const report = await simulateCall({
      url: agent.url,
      pcm: concat([silence(LEAD_MS, 8000), hindi]),
      sampleRate: 8000,
      waitForReplyMs: 1000,
      maxWaitMs: 12_000,
    });
    assert(report.connected, report.error);
    assertEquals(report.badChunks, []);
    // Speech-to-text was asked to detect the language, the vendor's way.
    const query = agent.vendors.stt.connections[0].url.searchParams;
    if (stt === "deepgram") assertEquals(query.get("language"), "multi");
    else assertEquals(query.get("language-code"), "unknown");
    // The model was told, and its history keeps the caller's words.
    assert(
      agent.vendors.llm.messages(0)[0].content.endsWith(
        "The caller is now speaking Hindi (hi-IN); answer in Hindi.",
      ),
      agent.vendors.llm.messages(0)[0].content,
    );
    // The greeting in the English voice; the answer in the Hindi voice,
    // with the amount in Hindi words.
    assertEquals(ttsRequests(agent.vendors), [
      {
        text: "Hello! How can I help you today?",
        language: "en-IN",
        speaker: "anushka",
      },
      {
        text: spokenForm(reply, { language: "hi-IN" }),
        language: "hi-IN",
        speaker: "abhilash",
      },
    ]);
    assert(!String(ttsRequests(agent.vendors)[1].text).includes("1,50,000"));
    assertEquals(agent.bots[0].history().at(-1)?.content, reply);
  });
}

Deno.test("a caller who switches back to English gets English again, and an unlisted language changes nothing", async () => {
  await using agent = await startAgentServer({
    stt: "sarvam",
    tts: "sarvam",
    script: {
      turns: [
        HINDI_TURN,
        {
          text: "Actually, English please.",
          language: "en-IN",
          speechStartMs: 200,
          turnMs: 1500,
        },
        {
          text: "வணக்கம்",
          language: "ta-IN",
          speechStartMs: 200,
          turnMs: 1500,
        },
      ],
    },
    replies: [
      textReply(["ठीक है।"]),
      textReply(["Sure."]),
      textReply(["Okay."]),
    ],
    env: SWITCHING,
  });
  const hindi = await fixturePcm("hindi_en_8000.wav");
  const report = await simulateCall({
    url: agent.url,
    pcm: concat([
      silence(LEAD_MS, 8000),
      hindi,
      silence(500, 8000),
      new Uint8Array(1500 * 16),
      new Uint8Array(1500 * 16),
    ]),
    sampleRate: 8000,
    waitForReplyMs: 1500,
    maxWaitMs: 15_000,
  });
  assert(report.connected, report.error);
  await until(
    () => ttsRequests(agent.vendors).length >= 4,
    "the three replies",
  );
  assertEquals(
    ttsRequests(agent.vendors).slice(1).map((r) => [
      r.text,
      r.language,
      r.speaker,
    ]),
    [
      ["ठीक है।", "hi-IN", "abhilash"],
      ["Sure.", "en-IN", "anushka"],
      ["Okay.", "en-IN", "anushka"],
    ],
  );
  assert(
    agent.vendors.llm.messages(1)[0].content.endsWith(
      "The caller is now speaking English (en-IN); answer in English.",
    ),
  );
});

Deno.test("with one language, speech-to-text is asked for it and finals carry no language", async () => {
  for (const vendor of ["deepgram", "sarvam"] as SttVendor[]) {
    await using server = await FakeSttServer.start(vendor, {
      apiKey: "k",
      script: { turns: [{ text: "Namaste ji", language: "hi-IN" }] },
    });
    const events = await transcribe(vendor, server, {
      languages: ["hi-IN"],
      finals: 1,
    });
    const query = server.connections[0].url.searchParams;
    assertEquals(
      query.get(vendor === "deepgram" ? "language" : "language-code"),
      "hi-IN",
    );
    const final = events.find((event) => event.type === "final");
    assertEquals(final, { type: "final", text: "Namaste ji", endOfTurn: true });
  }
});

Deno.test("with several languages, each final reports the listed language the vendor detected", async () => {
  for (const vendor of ["deepgram", "sarvam"] as SttVendor[]) {
    await using server = await FakeSttServer.start(vendor, {
      apiKey: "k",
      script: {
        turns: [
          { text: "Namaste ji", language: "hi-IN" },
          { text: "Hello there", language: "en-IN" },
          { text: "Vanakkam", language: "ta-IN" },
        ],
      },
    });
    const events = await transcribe(vendor, server, {
      languages: ["en-IN", "hi-IN"],
      finals: 3,
    });
    const finals = events.filter((event) => event.type === "final");
    assertEquals(finals, [
      {
        type: "final",
        text: "Namaste ji",
        endOfTurn: true,
        language: "hi-IN",
      },
      {
        type: "final",
        text: "Hello there",
        endOfTurn: true,
        language: "en-IN",
      },
      // Tamil is not one of the agent's languages: no switch.
      { type: "final", text: "Vanakkam", endOfTurn: true },
    ], vendor);
  }
});

async function transcribe(
  vendor: SttVendor,
  server: FakeSttServer,
  options: { languages: string[]; finals: number },
): Promise<SpeechEvent[]> {
  const stt = vendor === "deepgram"
    ? new DeepgramStt({
      apiKey: "k",
      baseUrl: server.baseUrl,
      connectTimeoutMs: 2000,
    })
    : new SarvamStt({
      apiKey: "k",
      baseUrl: server.baseUrl,
      connectTimeoutMs: 2000,
    });
  const session = await stt.open({
    sampleRate: 8000,
    language: options.languages[0],
    languages: options.languages,
  });
  const events: SpeechEvent[] = [];
  const reading = (async () => {
    for await (const event of session.events()) events.push(event);
  })();
  const second = new Uint8Array(16000);
  for (let i = 0; i < 4; i++) session.push(second);
  await until(
    () =>
      events.filter((event) => event.type === "final").length >=
        options.finals,
    "the finals",
  );
  await session.close();
  await reading;
  return events;
}

Deno.test("AGENT_LANGUAGES and TTS_VOICES: parsed with the agent's language first, bad values name the variable", () => {
  assertEquals(parseLanguages("hi-IN, en-IN", "en-IN"), ["en-IN", "hi-IN"]);
  assertEquals(parseLanguages("hi-IN", "en-IN"), ["en-IN", "hi-IN"]);
  assertEquals(
    parseVoices("en-IN:anushka, hi-in:abhilash", ["en-IN", "hi-IN"]),
    {
      "en-IN": "anushka",
      "hi-IN": "abhilash",
    },
  );
  const base = { DEEPGRAM_API_KEY: "k", LLM_API_KEY: "k" };
  const config = loadAgentConfig({ ...base, ...SWITCHING });
  assertEquals(config.languages, ["en-IN", "hi-IN"]);
  assertEquals(config.voices, { "en-IN": "anushka", "hi-IN": "abhilash" });
  assertEquals(loadAgentConfig(base).languages, undefined);
  const bad = (env: Record<string, string>, variable: string, text: string) => {
    const error = assertThrows(
      () => loadAgentConfig({ ...base, ...env }),
      ConfigError,
      text,
    );
    assertEquals(error.variable, variable);
  };
  bad({ AGENT_LANGUAGES: "en-IN,hindi!" }, "AGENT_LANGUAGES", '"hindi!"');
  bad(
    { AGENT_LANGUAGE: "multi", AGENT_LANGUAGES: "en-IN,hi-IN" },
    "AGENT_LANGUAGES",
    '"multi"',
  );
  bad(
    { AGENT_LANGUAGES: "en-IN,hi-IN", TTS_VOICES: "ta-IN:x" },
    "TTS_VOICES",
    '"ta-IN:x"',
  );
  bad({ TTS_VOICES: "anushka" }, "TTS_VOICES", '"anushka"');
});

Deno.test("an agent file lists languages and voices", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/agent.yaml`;
    await Deno.writeTextFile(
      file,
      "prompt: Hi\nlanguages: [en-IN, hi-IN]\nvoices:\n  hi-IN: abhilash\n",
    );
    const config = loadAgentFile(file, {
      DEEPGRAM_API_KEY: "k",
      LLM_API_KEY: "k",
    });
    assertEquals(config.languages, ["en-IN", "hi-IN"]);
    assertEquals(config.voices, { "hi-IN": "abhilash" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("detected codes map onto the listed languages; language names for the model", () => {
  assertEquals(matchLanguage("hi", ["en-IN", "hi-IN"]), "hi-IN");
  assertEquals(matchLanguage("HI-in", ["en-IN", "hi-IN"]), "hi-IN");
  assertEquals(matchLanguage("ta-IN", ["en-IN", "hi-IN"]), undefined);
  assertEquals(matchLanguage("", ["en-IN"]), undefined);
  assertEquals(languageName("hi-IN"), "Hindi");
  assertEquals(languageName("en-IN"), "English");
  assertEquals(languageName("ta-IN"), "Tamil");
});
