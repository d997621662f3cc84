/**
 * Bots readied at Exotel's `connected`, before `start`: the call asks a
 * preparing factory at `connected`, hands what it readied to the bot at
 * `start`, and cancels it when the call ends first. The agent opens
 * speech-to-text then, against a fake vendor on 127.0.0.1.
 */
import { assertEquals } from "@std/assert";
import type {
  Bot,
  BotFactory,
  BotPreparation,
  CallInfo,
  ConnectedCall,
  PreparingBotFactory,
} from "../src/bots/bot.ts";
import { Call, type CallSettings } from "../src/call/call.ts";
import { SessionRegistry } from "../src/call/registry.ts";
import { createSocketPair } from "../src/call/socket.ts";
import {
  createAgentBotFactory,
  createAgentsBotFactory,
} from "../src/bots/agent/mod.ts";
import { FakeClock, settle } from "./fakes/clock.ts";
import {
  callInfo,
  MemoryOutput,
  startAgentFakes,
  until,
} from "./fakes/agent_call.ts";
import { startRouteServer } from "./fakes/route_server.ts";

const settings: CallSettings = {
  chunkBytes: 3200,
  leadMs: 400,
  maxBufferedBytes: 65536,
  maxFrameBytes: 16 * 1024,
  maxPreStartBytes: 8000,
};

const START = {
  event: "start",
  sequence_number: "1",
  stream_sid: "S1",
  start: {
    stream_sid: "S1",
    call_sid: "CA1",
    account_sid: "AC1",
    from: "+919876543210",
    to: "08047491899",
    custom_parameters: {},
    media_format: { encoding: "audio/x-raw", sample_rate: "8000" },
  },
};

/** The call's bot from what `connected` readied, started, its marks echoed at once. */
async function startPrepared(
  preparation: BotPreparation,
  info: CallInfo,
): Promise<{ bot: Bot; output: MemoryOutput }> {
  const output = new MemoryOutput(info.sampleRate);
  const bot = preparation.create(info, output);
  output.onMark = (name) => bot.marked?.(name);
  await bot.start?.();
  return { bot, output };
}

/** A preparing factory that writes down what happens to it. */
function preparingFactory(
  log: string[],
  options: { failToPrepare?: boolean } = {},
): PreparingBotFactory {
  const bot = (name: string): Bot => ({
    audio() {},
    stop: () => void log.push(`stop ${name}`),
  });
  const plain: BotFactory = () => {
    log.push("create unprepared");
    return bot("unprepared");
  };
  return Object.assign(plain, {
    connected(call: ConnectedCall): BotPreparation {
      if (options.failToPrepare) throw new Error("vendor unreachable");
      log.push(`connected ${call.sampleRate} ${call.agent ?? "-"}`);
      return {
        create: () => {
          log.push("create prepared");
          return bot("prepared");
        },
        cancel: () => void log.push("cancel"),
      };
    },
  });
}

/** A call over an in-memory pair with `createBot`; `send` is Exotel. */
function call(createBot: BotFactory) {
  const [server, exotel] = createSocketPair();
  exotel.listen({ message() {}, close() {} });
  const running = new Call({
    socket: server,
    clock: new FakeClock(),
    registry: new SessionRegistry(),
    settings,
    botName: "test",
    createBot,
    request: { sampleRate: 16000, remoteAddress: "127.0.0.1", agent: "sales" },
  });
  return {
    call: running,
    send: (frame: unknown) => exotel.send(JSON.stringify(frame)),
  };
}

Deno.test("bot preparation: the factory readies the call at connected, with the URL's rate and agent, and start hands it to the bot", async () => {
  const log: string[] = [];
  const { call: running, send } = call(preparingFactory(log));
  send({ event: "connected" });
  await settle();
  assertEquals(log, ["connected 16000 sales"]);
  send({ event: "connected" });
  send(START);
  await settle();
  running.end("test");
  await running.ended;
  assertEquals(log, [
    "connected 16000 sales",
    "create prepared",
    "stop prepared",
  ]);
});

Deno.test("bot preparation: a call that ends before start cancels what was readied", async () => {
  const log: string[] = [];
  const { call: running, send } = call(preparingFactory(log));
  send({ event: "connected" });
  await settle();
  running.end("test");
  await running.ended;
  assertEquals(log, ["connected 16000 sales", "cancel"]);
});

Deno.test("bot preparation: a factory that cannot get ready still gets its bot created at start", async () => {
  const log: string[] = [];
  const { call: running, send } = call(
    preparingFactory(log, { failToPrepare: true }),
  );
  send({ event: "connected" });
  send(START);
  await settle();
  running.end("test");
  await running.ended;
  assertEquals(log, ["create unprepared", "stop unprepared"]);
});

Deno.test("bot preparation: without connected the bot is created at start, unprepared", async () => {
  const log: string[] = [];
  const { call: running, send } = call(preparingFactory(log));
  send(START);
  await settle();
  running.end("test");
  await running.ended;
  assertEquals(log, ["create unprepared", "stop unprepared"]);
});

Deno.test("agent at connected: speech-to-text is open before start, and the call's bot listens on that session", async () => {
  await using vendors = await startAgentFakes();
  const factory = createAgentBotFactory(vendors.config, {
    providers: vendors.providers,
  });
  const preparation = factory.connected({ sampleRate: 8000 });
  await until(() => vendors.stt.connections.length === 1, "the STT session");
  const { bot, output } = await startPrepared(preparation, callInfo(8000));
  bot.audio(new Uint8Array(3200));
  const [session] = vendors.stt.connections;
  await until(() => session.audioBytes >= 3200, "caller audio on it");
  assertEquals(vendors.stt.connections.length, 1);
  output.stop();
  await bot.stop();
  await session.closed;
});

Deno.test("agent at connected: a call that never starts closes the session readied for it", async () => {
  await using vendors = await startAgentFakes();
  const factory = createAgentBotFactory(vendors.config, {
    providers: vendors.providers,
  });
  const preparation = factory.connected({ sampleRate: 8000 });
  await until(() => vendors.stt.connections.length === 1, "the STT session");
  preparation.cancel();
  await vendors.stt.connections[0].closed;
});

Deno.test("agent at connected: a start at another rate than the URL's closes the readied session and listens at the call's rate", async () => {
  await using vendors = await startAgentFakes();
  const factory = createAgentBotFactory(vendors.config, {
    providers: vendors.providers,
  });
  const preparation = factory.connected({ sampleRate: 8000 });
  await until(() => vendors.stt.connections.length === 1, "the STT session");
  const { bot, output } = await startPrepared(preparation, callInfo(16000));
  await until(() => vendors.stt.connections.length === 2, "a new session");
  const [readied, own] = vendors.stt.connections;
  await readied.closed;
  assertEquals(
    [
      readied.url.searchParams.get("sample_rate"),
      own.url.searchParams.get("sample_rate"),
    ],
    ["8000", "16000"],
  );
  output.stop();
  await bot.stop();
  await own.closed;
});

Deno.test("agent at connected: a setup webhook choosing another language closes the readied session and opens one in that language", async () => {
  await using vendors = await startAgentFakes();
  await using hooks = startRouteServer({
    "/setup": () => Response.json({ language: "hi-IN" }),
  });
  const factory = createAgentBotFactory({
    ...vendors.config,
    setup: { url: hooks.url("/setup"), timeoutMs: 1500 },
  }, { providers: vendors.providers });
  const preparation = factory.connected({ sampleRate: 8000 });
  const { bot, output } = await startPrepared(preparation, callInfo(8000));
  await until(() => vendors.stt.connections.length === 2, "a new session");
  const [readied, own] = vendors.stt.connections;
  await readied.closed;
  assertEquals(
    [
      readied.url.searchParams.get("language"),
      own.url.searchParams.get("language"),
    ],
    [vendors.config.language, "hi-IN"],
  );
  output.stop();
  await bot.stop();
  await own.closed;
});

Deno.test("several agents at connected: the URL's agent= is readied; a start naming another agent lets it go", async () => {
  await using vendors = await startAgentFakes();
  const factory = createAgentsBotFactory({
    agents: new Map([
      ["sales", { ...vendors.config, name: "sales" }],
      ["support", { ...vendors.config, name: "support" }],
    ]),
    defaultAgent: "sales",
  }, { providers: vendors.providers });
  for (const startAgent of ["sales", "support"]) {
    const before = vendors.stt.connections.length;
    const preparation = factory.connected({ sampleRate: 8000, agent: "sales" });
    await until(
      () => vendors.stt.connections.length === before + 1,
      "the readied session",
    );
    const { bot, output } = await startPrepared(preparation, {
      ...callInfo(8000),
      agent: startAgent,
    });
    const readied = vendors.stt.connections[before];
    if (startAgent === "sales") {
      // The readied session serves the call: no other is opened.
      assertEquals(vendors.stt.connections.length, before + 1);
    } else {
      await readied.closed;
      await until(
        () => vendors.stt.connections.length === before + 2,
        "the other agent's session",
      );
    }
    output.stop();
    await bot.stop();
    await Promise.all(
      vendors.stt.connections.slice(before).map((session) => session.closed),
    );
  }
});
