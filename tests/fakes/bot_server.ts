/**
 * The real server on a random loopback port, answering calls with a bot the
 * test builds: {@linkcode startBotServer} for any bot factory, and
 * {@linkcode startAgentServer} for the agent against fake vendor servers.
 * The simulator (`tools/simulator.ts`) calls {@linkcode BotServer.url}.
 *
 * Disposing one waits for every call to end and every bot to settle before
 * the server shuts down, so no socket or timer outlives the test.
 *
 * @module
 */

import type { AgentBot } from "../../src/bots/agent/agent.ts";
import {
  type AgentFactoryOptions,
  createAgentBotFactory,
} from "../../src/bots/agent/mod.ts";
import type { Bot, CallInfo, CallOutput } from "../../src/bots/bot.ts";
import { loadConfig } from "../../src/config.ts";
import { type RunningServer, startServer } from "../../src/server.ts";
import {
  type AgentFakes,
  type AgentFakesOptions,
  startAgentFakes,
  until,
} from "./agent_call.ts";

/** A running server whose calls are answered by bots of type `B`. */
export interface BotServer<B extends Bot> extends AsyncDisposable {
  /** The voicebot WebSocket URL (`ws://127.0.0.1:<port>/voicebot/ws`). */
  url: string;
  /** The HTTP base URL (`http://127.0.0.1:<port>`), for records and sessions. */
  base: string;
  /** Every bot created, one per call, in order. */
  bots: B[];
  /** The server itself. */
  server: RunningServer;
  /** Resolves once no call is live and every bot has settled (see {@linkcode BotServerOptions.settled}). */
  callsEnded(): Promise<void>;
}

/** Options for {@linkcode startBotServer}. */
export interface BotServerOptions<B extends Bot> {
  /** More server environment, over `HOST`, `PORT` and an in-memory `KV_PATH`. */
  env?: Record<string, string>;
  /** What to wait for, per bot, before the server shuts down (e.g. `bot.closed`). */
  settled?: (bot: B) => Promise<unknown>;
}

/**
 * Starts the server on 127.0.0.1 with an OS-chosen port; each call gets a bot
 * from `createBot`, kept in {@linkcode BotServer.bots}.
 *
 * @example Echo one call
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { createEchoBot } from "../../src/bots/echo.ts";
 * import { simulateCall } from "../../tools/simulator.ts";
 *
 * await using echo = await startBotServer(createEchoBot);
 * const report = await simulateCall({
 *   url: echo.url,
 *   pcm: new Uint8Array(3200).fill(1),
 *   sampleRate: 8000,
 *   realtime: false,
 *   waitForReplyMs: 100,
 * });
 * assertEquals(report.connected, true);
 * assertEquals(echo.bots.length, 1);
 * ```
 */
export async function startBotServer<B extends Bot>(
  createBot: (info: CallInfo, output: CallOutput) => B,
  options: BotServerOptions<B> = {},
): Promise<BotServer<B>> {
  const bots: B[] = [];
  const server = await startServer(
    loadConfig({
      HOST: "127.0.0.1",
      PORT: "0",
      KV_PATH: ":memory:",
      ...options.env,
    }),
    {
      createBot: (info, output) => {
        const bot = createBot(info, output);
        bots.push(bot);
        return bot;
      },
    },
  );
  const settled = options.settled;
  const callsEnded = async () => {
    await until(() => server.registry.size === 0, "the calls to end");
    if (settled) await Promise.all(bots.map(settled));
  };
  return {
    url: `ws://127.0.0.1:${server.addr.port}/voicebot/ws`,
    base: `http://127.0.0.1:${server.addr.port}`,
    bots,
    server,
    callsEnded,
    async [Symbol.asyncDispose]() {
      try {
        await callsEnded();
      } finally {
        await server.shutdown();
      }
    },
  };
}

/** The agent's server and the fake vendors it talks to. */
export interface AgentServer extends BotServer<AgentBot> {
  /** The fake speech-to-text, model and voice servers. */
  vendors: AgentFakes;
}

/** Options for {@linkcode startAgentServer}: the fakes' script and the factory's extras. */
export interface AgentServerOptions extends AgentFakesOptions {
  /** Given to `createAgentBotFactory` beside the fakes' providers. */
  factory?: Omit<AgentFactoryOptions, "providers">;
}

/**
 * Starts fake vendors ({@linkcode startAgentFakes}) and the server with the
 * agent pointed at them. Disposing it waits for the calls to end and the bots
 * to close, then stops the server and the fakes.
 *
 * @example The greeting reaches the caller
 * ```ts
 * import { assert } from "@std/assert";
 * import { simulateCall } from "../../tools/simulator.ts";
 *
 * await using agent = await startAgentServer({
 *   env: { AGENT_GREETING: "Hello from the fakes." },
 * });
 * const report = await simulateCall({
 *   url: agent.url,
 *   pcm: new Uint8Array(8000),
 *   sampleRate: 8000,
 *   waitForReplyMs: 300,
 * });
 * assert(report.receivedPcm.length > 0);
 * assert(agent.vendors.tts.texts().includes("Hello from the fakes."));
 * ```
 */
export async function startAgentServer(
  options: AgentServerOptions = {},
): Promise<AgentServer> {
  const vendors = await startAgentFakes(options);
  try {
    const factory = createAgentBotFactory(vendors.config, {
      ...options.factory,
      providers: vendors.providers,
    });
    const running = await startBotServer<AgentBot>(factory, {
      settled: (bot) => bot.closed,
    });
    return {
      ...running,
      vendors,
      async [Symbol.asyncDispose]() {
        try {
          await running[Symbol.asyncDispose]();
        } finally {
          await vendors[Symbol.asyncDispose]();
        }
      },
    };
  } catch (error) {
    await vendors[Symbol.asyncDispose]();
    throw error;
  }
}
