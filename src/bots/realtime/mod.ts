/**
 * `BOT=realtime`: speech-to-speech agents on the call, OpenAI Realtime or
 * Gemini Live, on the same player, marks, barge-in, tools and records as
 * the cascaded agent.
 *
 * @example
 * ```ts ignore
 * const createBot = createRealtimeBotFactory(loadRealtimeConfig(Deno.env.toObject()));
 * await startServer(config, { createBot });
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
import { CallOutcomes } from "../agent/outcomes.ts";
import type { RealtimeConfig } from "./config.ts";
import { FallbackLine } from "./fallback_line.ts";
import { RealtimeBot } from "./realtime_bot.ts";

export {
  loadRealtimeConfig,
  REALTIME_PROVIDERS,
  type RealtimeConfig,
} from "./config.ts";
export { FALLBACK_LINE_TEXT, FallbackLine } from "./fallback_line.ts";
export { RealtimeBot, type RealtimeBotSettings } from "./realtime_bot.ts";

/** Replaceable parts of {@linkcode createRealtimeBotFactory}. */
export interface RealtimeFactoryOptions {
  /** The model; built from the configuration by default. */
  model?: RealtimeModel;
  /** Time and timers; the system clock by default. */
  clock?: Clock;
  /** The player's chunk size (`CHUNK_BYTES`); 3200 by default. */
  chunkBytes?: number;
  /** Application hooks: DTMF, end of call, transfer, provider errors. */
  hooks?: AgentHooks;
}

/** The realtime bot's factory, plus the outcomes it records for Passthru. */
export interface RealtimeBotFactory {
  (info: CallInfo, output: CallOutput): RealtimeBot;
  /** How recent calls left the bot, by call id. */
  readonly outcomes: CallOutcomes;
}

/**
 * Creates the factory `BOT=realtime` runs on.
 *
 * @example
 * ```ts ignore
 * const factory = createRealtimeBotFactory(loadRealtimeConfig(env));
 * ```
 */
export function createRealtimeBotFactory(
  config: RealtimeConfig,
  options: RealtimeFactoryOptions = {},
): RealtimeBotFactory {
  const model = options.model ??
    (config.provider === "openai"
      ? new OpenAiRealtime(config.openai)
      : new GeminiLive(config.gemini));
  const outcomes = new CallOutcomes();
  const fallback = new FallbackLine();
  const deps = {
    model,
    settings: config.settings,
    clock: options.clock ?? systemClock,
    chunkBytes: options.chunkBytes ?? DEFAULT_CHUNK_BYTES,
    outcomes,
    fallbackAudio: (info: CallInfo) => fallback.pcm(info.sampleRate),
    hooks: options.hooks ?? {},
  };
  const factory = (info: CallInfo, output: CallOutput) =>
    new RealtimeBot(info, output, deps);
  return Object.assign(factory, { outcomes });
}
