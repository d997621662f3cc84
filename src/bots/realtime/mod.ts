/**
 * `BOT=realtime`: speech-to-speech agents on the call, OpenAI Realtime or
 * Gemini Live, configured by the same agent settings or agent files as the
 * cascaded agent (prompt, greeting, lines, tools, setup webhook), on the
 * same player, marks, barge-in and records.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { loadAgentConfig } from "../agent/config.ts";
 * import { createRealtimeBotFactory, loadRealtimeConfig } from "./mod.ts";
 *
 * const env = { REALTIME_PROVIDER: "openai", OPENAI_API_KEY: "sk-key" };
 * const agent = { ...loadAgentConfig(env, { cascade: false }), name: "desk" };
 * // Nothing connects yet: each call opens its own model session.
 * const createBot = createRealtimeBotFactory(loadRealtimeConfig(env), {
 *   agents: new Map([["desk", agent]]),
 *   defaultAgent: "desk",
 * });
 * assertEquals(createBot.checkAgent(undefined), undefined);
 * assertEquals(typeof createBot.checkAgent("sales"), "string");
 * ```
 *
 * @module
 */

import { DEFAULT_CHUNK_BYTES } from "../../audio/pcm.ts";
import { type Clock, systemClock } from "../../call/clock.ts";
import { GeminiLive } from "../../providers/realtime/gemini_live.ts";
import { OpenAiRealtime } from "../../providers/realtime/openai_realtime.ts";
import type { RealtimeModel } from "../../providers/realtime/realtime_session.ts";
import type { CallInfo, CallOutput } from "../bot.ts";
import type { AgentHooks } from "../agent/agent.ts";
import type { Agents } from "../agent/agent_file.ts";
import { UnknownAgentError } from "../agent/mod.ts";
import { CallOutcomes } from "../agent/outcomes.ts";
import { type CodeTool, codeTool, ToolRunner } from "../agent/tool_runner.ts";
import type { RealtimeConfig } from "./config.ts";
import { FallbackLine } from "./fallback_line.ts";
import { RealtimeBot, type RealtimeDependencies } from "./realtime_bot.ts";

export {
  loadRealtimeConfig,
  REALTIME_PROVIDERS,
  type RealtimeConfig,
} from "./config.ts";
export { FALLBACK_LINE_TEXT, FallbackLine } from "./fallback_line.ts";
export { RealtimeBot, type RealtimeDependencies } from "./realtime_bot.ts";

/** Replaceable parts of {@linkcode createRealtimeBotFactory}. */
export interface RealtimeFactoryOptions {
  /** The model; built from the configuration by default. */
  model?: RealtimeModel;
  /** Code tools, offered besides the agents' webhook tools. */
  tools?: readonly CodeTool[];
  /** Time and timers; the system clock by default. */
  clock?: Clock;
  /** The player's chunk size (`CHUNK_BYTES`); 3200 by default. */
  chunkBytes?: number;
  /** Application hooks: DTMF, end of call, transfer, tool calls, provider errors. */
  hooks?: AgentHooks;
}

/** The realtime bot's factory, plus what the server asks of it. */
export interface RealtimeBotFactory {
  (info: CallInfo, output: CallOutput): RealtimeBot;
  /** How recent calls left the bot, by call id. */
  readonly outcomes: CallOutcomes;
  /** Why a call asking for agent `name` cannot be answered, if it cannot. */
  checkAgent(name: string | undefined): string | undefined;
}

/**
 * Creates the factory `BOT=realtime` runs on: each call gets the agent its
 * socket URL names with `agent=`, or the default one, spoken by the model.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { loadAgentConfig } from "../agent/config.ts";
 * import { createRealtimeBotFactory, loadRealtimeConfig } from "./mod.ts";
 *
 * const env = { REALTIME_PROVIDER: "openai", OPENAI_API_KEY: "sk-key" };
 * const agent = { ...loadAgentConfig(env, { cascade: false }), name: "desk" };
 * // An unknown `agent=` is refused before the call is answered.
 * const createBot = createRealtimeBotFactory(loadRealtimeConfig(env), {
 *   agents: new Map([["desk", agent]]),
 *   defaultAgent: "desk",
 * });
 * assertEquals(createBot.checkAgent(undefined), undefined);
 * assertEquals(typeof createBot.checkAgent("sales"), "string");
 * ```
 */
export function createRealtimeBotFactory(
  config: RealtimeConfig,
  agents: Agents,
  options: RealtimeFactoryOptions = {},
): RealtimeBotFactory {
  const model = options.model ??
    (config.provider === "openai"
      ? new OpenAiRealtime(config.openai)
      : new GeminiLive(config.gemini));
  const clock = options.clock ?? systemClock;
  const outcomes = new CallOutcomes({ clock });
  const fallback = new FallbackLine();
  const shared = {
    model,
    onFailure: config.onFailure,
    clock,
    chunkBytes: options.chunkBytes ?? DEFAULT_CHUNK_BYTES,
    outcomes,
    fallbackAudio: (info: CallInfo) => fallback.pcm(info.sampleRate),
    hooks: options.hooks ?? {},
  };
  const byName = new Map<string, RealtimeDependencies>();
  for (const [name, agent] of agents.agents) {
    const tools = [...agent.tools, ...(options.tools ?? []).map(codeTool)];
    byName.set(name, {
      ...shared,
      agent,
      toolRunner: tools.length > 0 ? new ToolRunner(tools) : undefined,
    });
  }
  const known = [...byName.keys()];
  const chosen = (name: string | undefined) =>
    byName.get(name ?? agents.defaultAgent ?? "");
  const factory = (info: CallInfo, output: CallOutput) => {
    const deps = chosen(info.agent);
    if (!deps) throw new UnknownAgentError(info.agent, known);
    return new RealtimeBot(info, output, deps);
  };
  const checkAgent = (name: string | undefined) =>
    chosen(name) ? undefined : new UnknownAgentError(name, known).message;
  return Object.assign(factory, { outcomes, checkAgent });
}
