import { assert, assertEquals } from "@std/assert";
import { type ExovoiceServer, serve } from "../mod.ts";
import {
  createIvrBot,
  type IvrOptions,
  loadPrompts,
  type Prompts,
} from "../examples/ivr.ts";
import { PROMPT_TEXTS } from "../examples/ivr/prompts.ts";
import { type DtmfPress, simulateCall } from "../tools/simulator.ts";
import type { SampleRate } from "../src/audio/pcm.ts";
import { SERVER_FLAGS, startServerProcess } from "./fakes/server_process.ts";

const prompts = await loadPrompts();

async function startIvr(
  options: IvrOptions = {},
  shortPrompts = false,
): Promise<ExovoiceServer> {
  // 100 ms of quiet per prompt when only the menu's logic is under test.
  const spoken = shortPrompts
    ? Object.fromEntries(
      Object.keys(prompts).map((name) => [name, new Uint8Array(1600)]),
    ) as Prompts
    : prompts;
  return await serve({
    bot: createIvrBot(spoken, options),
    botName: "ivr",
    readEnv: false,
    env: { KV_PATH: ":memory:", LOG_LEVEL: "error" },
    hostname: "127.0.0.1",
    port: 0,
    logging: false,
  });
}

/** Calls the IVR, pressing `dtmf`; resolves with the report and the call's record. */
async function callIvr(
  server: ExovoiceServer,
  dtmf: DtmfPress[],
  sampleRate: SampleRate = 8000,
) {
  const callSid = `CA-ivr-${crypto.randomUUID().slice(0, 8)}`;
  const report = await simulateCall({
    url: `${server.url.replace("http", "ws")}/voicebot/ws`,
    pcm: new Uint8Array(sampleRate / 5),
    sampleRate,
    dtmf,
    realtime: false,
    callSid,
  });
  // The record is completed a moment after the call ends.
  for (let poll = 0; poll < 500; poll++) {
    const response = await fetch(`${server.url}/calls/${callSid}`);
    if (response.ok) {
      const record = await response.json();
      if (record.state === "completed") return { report, record };
    } else await response.body?.cancel();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`No record of ${callSid}`);
}

function lines(record: { transcript: { role: string; text: string }[] }) {
  return record.transcript.map(({ role, text }) => `${role}: ${text}`);
}

Deno.test("examples/ivr.ts: keys pick hours, then an order's status, then goodbye and hang-up", async () => {
  await using server = await startIvr();
  const press = (digit: string, atMs: number) => ({ digit, atMs });
  const { report, record } = await callIvr(server, [
    press("1", 300),
    press("2", 600),
    ...[..."12345#"].map((digit, i) => press(digit, 900 + i * 100)),
    press("*", 2000),
  ]);
  assertEquals(report.endReason, "closed_by_bot");
  assertEquals(report.closeReason, "bot:ivr_goodbye");
  assertEquals(report.badChunks, []);
  assertEquals(report.badFrames, []);
  assertEquals(lines(record), [
    `bot: ${PROMPT_TEXTS.welcome}`,
    `bot: ${PROMPT_TEXTS.menu}`,
    "caller: DTMF 1",
    `bot: ${PROMPT_TEXTS.hours}`,
    `bot: ${PROMPT_TEXTS.menu}`,
    "caller: DTMF 2",
    `bot: ${PROMPT_TEXTS.order_prompt}`,
    "caller: DTMF 12345#",
    `bot: Order number one two three four five ${PROMPT_TEXTS.order_shipped}`,
    `bot: ${PROMPT_TEXTS.menu}`,
    "caller: DTMF *",
    `bot: ${PROMPT_TEXTS.goodbye}`,
  ]);
  // Every key cut what was playing; the goodbye was heard to its end.
  assert(report.clearsReceived >= 3, `${report.clearsReceived} clears`);
  assertEquals(report.marksEchoed.at(-1)?.split("-")[0], "goodbye");
  const goodbye = record.transcript.at(-1);
  assertEquals(goodbye.interrupted, undefined);
});

Deno.test("examples/ivr.ts: an unknown order and a wrong key are answered, at 16 kHz too", async () => {
  await using server = await startIvr();
  const { report, record } = await callIvr(server, [
    { digit: "2", atMs: 300 },
    { digit: "9", atMs: 500 },
    { digit: "#", atMs: 600 },
    { digit: "7", atMs: 900 },
    { digit: "#", atMs: 1200 },
  ], 16000);
  assertEquals(report.endReason, "closed_by_bot");
  assertEquals(report.badChunks, []);
  const said = lines(record);
  assert(
    said.includes(
      `bot: Order number nine ${PROMPT_TEXTS.order_unknown}`,
    ),
    said.join("\n"),
  );
  assert(said.includes(`bot: ${PROMPT_TEXTS.invalid}`), said.join("\n"));
  assertEquals(said.at(-1), `bot: ${PROMPT_TEXTS.goodbye}`);
});

Deno.test("examples/ivr.ts: a caller who presses nothing is asked again, then told goodbye", async () => {
  await using server = await startIvr({ inputTimeoutMs: 100 }, true);
  const { report, record } = await callIvr(server, []);
  assertEquals(report.endReason, "closed_by_bot");
  assertEquals(lines(record), [
    `bot: ${PROMPT_TEXTS.welcome}`,
    `bot: ${PROMPT_TEXTS.menu}`,
    `bot: ${PROMPT_TEXTS.no_input}`,
    `bot: ${PROMPT_TEXTS.menu}`,
    `bot: ${PROMPT_TEXTS.goodbye}`,
  ]);
});

Deno.test("examples/ivr.ts runs as its README command does, and exits 0 on SIGTERM", async () => {
  const server = startServerProcess({ KV_PATH: ":memory:" }, {
    args: ["run", ...SERVER_FLAGS, "examples/ivr.ts"],
  });
  try {
    const port = await server.port;
    const report = await simulateCall({
      url: `ws://127.0.0.1:${port}/voicebot/ws`,
      pcm: new Uint8Array(1600),
      sampleRate: 8000,
      dtmf: [{ digit: "*", atMs: 100 }],
      realtime: false,
    });
    assertEquals(report.closeReason, "bot:ivr_goodbye");
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    assertEquals((await health.json()).bot, "ivr");
  } finally {
    assertEquals(await server.stop("SIGTERM"), 0);
  }
});
