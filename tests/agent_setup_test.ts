/**
 * Per-call context: the setup webhook and the prompt and greeting
 * templates, over an in-memory call output with fake vendors and a fake
 * setup webhook on 127.0.0.1.
 */
import { assertEquals, assertStringIncludes } from "@std/assert";
import type { AgentConfig } from "../src/bots/agent/config.ts";
import { createAgentBotFactory } from "../src/bots/agent/mod.ts";
import { parseCallSetup } from "../src/bots/agent/setup_webhook.ts";
import { dateAndTime, renderTemplate } from "../src/bots/agent/template.ts";
import {
  type AgentFakes,
  callInfo,
  MemoryOutput,
  startAgentFakes,
  until,
} from "./fakes/agent_call.ts";
import { textReply } from "./fakes/openai_server.ts";
import { fakeSpeech } from "./fakes/tts_servers.ts";
import {
  type RouteHandler,
  type RouteServer,
  startRouteServer,
  wait,
} from "./fakes/route_server.ts";

const GREETING = "Hello! How can I help you today?";
/** 3 December 2026, 13:00 UTC: 6:30 pm in Kolkata. */
const NOW = Date.UTC(2026, 11, 3, 13, 0);

async function setupCall(
  handler: RouteHandler,
  config: (hooks: RouteServer) => Partial<AgentConfig>,
) {
  const hooks = startRouteServer({ "/setup": handler });
  const vendors: AgentFakes = await startAgentFakes({
    script: { turns: [] },
    replies: [textReply(["Sure."])],
  });
  const factory = createAgentBotFactory(
    { ...vendors.config, ...config(hooks) },
    { providers: vendors.providers, wallClock: () => NOW },
  );
  const output = new MemoryOutput(8000);
  const info = {
    ...callInfo(8000),
    customParameters: { custom_lang: "hi", branch: "Indiranagar" },
  };
  const bot = factory(info, output);
  output.onMark = (name) => bot.marked(name);
  output.onHangup = () => bot.stop();
  const started = bot.start();
  return {
    hooks,
    vendors,
    bot,
    output,
    started,
    async [Symbol.asyncDispose]() {
      output.stop();
      await bot.stop();
      await hooks.close();
      await vendors[Symbol.asyncDispose]();
    },
  };
}

Deno.test("the setup webhook gets the call, and its greeting, prompt and variables fill the templates", async () => {
  await using call = await setupCall(
    () =>
      Response.json({
        variables: { name: "Asha", visits: 3 },
        greeting: "Hi {{name}}, welcome back to {{custom.branch}}!",
      }),
    (hooks) => ({
      setup: { url: hooks.url("/setup"), timeoutMs: 1500 },
      name: "clinic",
      variables: { name: "", visits: "0", plan: "" },
      prompt:
        "Caller {{caller}} called {{called}} on {{date}} at {{time}}. Visits: {{visits}}. Plan: {{plan}}.",
    }),
  );
  await call.started;
  await until(() => call.output.played.length >= 1, "the greeting");
  assertEquals(call.hooks.requests[0].json, {
    call: {
      callId: "CA-test",
      streamSid: "MZ-CA-test",
      from: "+919876543210",
      to: "08047491899",
      customParameters: { custom_lang: "hi", branch: "Indiranagar" },
      agent: "clinic",
    },
  });
  assertEquals(
    call.output.utterances[0].pcm,
    fakeSpeech("Hi Asha, welcome back to Indiranagar!", 8000),
  );
  // A keypad turn makes the model see the system prompt.
  call.bot.dtmf("1");
  call.bot.dtmf("#");
  await until(() => call.vendors.llm.requests.length === 1, "the model");
  const messages = call.vendors.llm.requests[0].body?.messages as {
    content: string;
  }[];
  assertStringIncludes(
    messages[0].content,
    "Caller +919876543210 called 08047491899 on Thursday, 3 December 2026 at 6:30 pm. Visits: 3. Plan: .",
  );
});

Deno.test("a setup webhook that does not answer in time leaves the defaults, and the greeting waits no longer", async () => {
  await using call = await setupCall(
    async (_request, signal) => {
      await wait(10_000, signal);
      return Response.json({ greeting: "Too late" });
    },
    (hooks) => ({ setup: { url: hooks.url("/setup"), timeoutMs: 200 } }),
  );
  await call.started;
  // The greeting streams from the voice: compare it once all of it is read.
  await until(
    () => call.output.utterances[0]?.complete === true,
    "the whole greeting",
  );
  assertEquals(call.output.utterances[0].pcm, fakeSpeech(GREETING, 8000));
});

Deno.test("a setup webhook answering an error, or garbage, leaves the defaults", async () => {
  for (
    const answer of [
      () => new Response("oops", { status: 502 }),
      () => new Response("not json"),
      () => Response.json({ greeting: 42 }),
    ]
  ) {
    await using call = await setupCall(
      answer,
      (hooks) => ({ setup: { url: hooks.url("/setup"), timeoutMs: 1500 } }),
    );
    await call.started;
    // The greeting streams from the voice: compare it once all of it is read.
    await until(
      () => call.output.utterances[0]?.complete === true,
      "the whole greeting",
    );
    assertEquals(call.output.utterances[0].pcm, fakeSpeech(GREETING, 8000));
  }
});

Deno.test("a setup webhook's reject ends the stream without a word", async () => {
  await using call = await setupCall(
    () => Response.json({ reject: true }),
    (hooks) => ({ setup: { url: hooks.url("/setup"), timeoutMs: 1500 } }),
  );
  await call.started;
  await until(() => call.output.hangups.length === 1, "the hangup");
  assertEquals(call.output.hangups, ["rejected"]);
  assertEquals(call.output.utterances.length, 0);
});

Deno.test("without a setup webhook, templates use the call and the declared defaults; a variable with no value renders empty", async () => {
  await using call = await setupCall(
    () => Response.json({}),
    () => ({
      variables: { clinic: "Sunrise", doctor: "" },
      greeting: "{{clinic}} Clinic. Dr {{doctor}} is in. It is {{time}}.",
      // The rendered text as is: spoken forms would say "Doctor", "six thirty".
      spokenForms: "off",
    }),
  );
  await call.started;
  // The greeting streams from the voice: compare it once all of it is read.
  await until(
    () => call.output.utterances[0]?.complete === true,
    "the whole greeting",
  );
  assertEquals(
    call.output.utterances[0].pcm,
    fakeSpeech("Sunrise Clinic. Dr  is in. It is 6:30 pm.", 8000),
  );
  assertEquals(call.hooks.requests.length, 0);
});

Deno.test("templates render the call's values, and setup answers are read strictly", () => {
  const values = {
    caller: "+919876543210",
    called: "08047491899",
    custom: { lang: "hi" },
    ...dateAndTime(NOW, "Asia/Kolkata"),
    variables: { tier: "gold" },
  };
  assertEquals(
    renderTemplate(
      "{{caller}} → {{called}}, {{custom.lang}}, {{tier}}, {{date}} {{time}} {{custom.none}}",
      values,
    ),
    {
      text:
        "+919876543210 → 08047491899, hi, gold, Thursday, 3 December 2026 6:30 pm ",
      missing: ["custom.none"],
    },
  );
  assertEquals(dateAndTime(NOW, "UTC").time, "1:00 pm");
  assertEquals(parseCallSetup({ reject: false, voice: "asteria" }), {
    voice: "asteria",
  });
  for (
    const [bad, message] of [
      [[], "expected a JSON object"],
      [{ reject: "yes" }, 'reject "yes": expected true or false'],
      [{ language: "english!" }, 'language "english!"'],
      [{ variables: [1] }, "expected an object of names to values"],
    ] as const
  ) {
    try {
      parseCallSetup(bad);
      throw new Error(`accepted ${JSON.stringify(bad)}`);
    } catch (error) {
      assertStringIncludes((error as Error).message, message);
    }
  }
});

Deno.test("the setup webhook's language and voice apply to the call's speech-to-text and voice", async () => {
  await using call = await setupCall(
    () => Response.json({ language: "hi-IN", voice: "aura-2-helena-en" }),
    (hooks) => ({ setup: { url: hooks.url("/setup"), timeoutMs: 1500 } }),
  );
  await call.started;
  await until(() => call.output.played.length >= 1, "the greeting");
  await until(() => call.vendors.stt.requests.length >= 1, "speech-to-text");
  assertEquals(
    call.vendors.stt.requests[0].url.searchParams.get("language"),
    "hi-IN",
  );
  assertEquals(call.vendors.tts.requests[0].query.model, "aura-2-helena-en");
  assertEquals(call.output.utterances[0].pcm, fakeSpeech(GREETING, 8000));
});
