/**
 * `BOT=agent`: the conversational agent. Streaming speech-to-text (Deepgram
 * or Sarvam) → any OpenAI-compatible language model → text-to-speech
 * (Deepgram Aura, ElevenLabs or Sarvam Bulbul), with barge-in, a cached
 * greeting, DTMF, `end_call` and `transfer` tools, and a latency timeline
 * per turn.
 *
 * @example
 * ```ts ignore
 * import { createAgentBotFactory, loadAgentConfig } from "./src/bots/agent/mod.ts";
 *
 * const createBot = createAgentBotFactory(loadAgentConfig(Deno.env.toObject()));
 * startServer(config, { createBot });
 * ```
 *
 * @module
 */

import { DEFAULT_CHUNK_BYTES } from "../../audio/pcm.ts";
import { type Clock, systemClock } from "../../call/clock.ts";
import type { Bot, BotFactory, CallInfo, CallOutput } from "../bot.ts";
import { AgentBot, type AgentHooks } from "./agent.ts";
import type { AgentConfig } from "./config.ts";
import { AudioCache } from "./greeting_cache.ts";
import { CallOutcomes } from "./outcomes.ts";
import { type AgentProviders, createProviders } from "./providers.ts";
import type { TurnSummary } from "./timeline.ts";
import type { SpeechDetectorFactory } from "../../audio/speech_detector.ts";

export { AgentBot, type AgentHooks, VOICE_INSTRUCTIONS } from "./agent.ts";
export {
  type AgentConfig,
  describeAgentConfig,
  loadAgentConfig,
  type LoadAgentConfigOptions,
} from "./config.ts";
export { AudioCache } from "./greeting_cache.ts";
export { type CallOutcome, CallOutcomes } from "./outcomes.ts";
export { type AgentProviders, createProviders } from "./providers.ts";
export type { TurnSummary } from "./timeline.ts";
export {
  type AgentSpeechDetectors,
  loadSpeechDetectors,
} from "./voice_activity.ts";

/** Replaceable parts of {@linkcode createAgentBotFactory}. */
export interface AgentFactoryOptions {
  /** The adapters; built from the configuration by default. */
  providers?: AgentProviders;
  /** Time and timers; the system clock by default. */
  clock?: Clock;
  /** The player's chunk size (`CHUNK_BYTES`), for the timeline; 3200 by default. */
  chunkBytes?: number;
  /** Application hooks: DTMF, end of call, transfer. */
  hooks?: AgentHooks;
  /** Shared audio cache; a fresh one by default. */
  cache?: AudioCache;
  /** Each call's voice-activity detector (see {@linkcode loadSpeechDetectors}); the energy detector by default. */
  detectors?: SpeechDetectorFactory;
}

/** The agent's {@linkcode BotFactory}, plus what it shares between calls. */
export interface AgentBotFactory extends BotFactory {
  (info: CallInfo, output: CallOutput): AgentBot;
  /** Synthesised greetings and fallback lines, by text, voice and rate. */
  readonly cache: AudioCache;
  /** How recent calls left the agent, by call id: for a Passthru applet after the Voicebot applet. */
  readonly outcomes: CallOutcomes;
}

/**
 * Creates the factory `BOT=agent` runs on. The adapters, the audio cache and
 * the outcome store are shared by every call it creates.
 *
 * @example
 * ```ts ignore
 * const factory = createAgentBotFactory(loadAgentConfig(Deno.env.toObject()));
 * const app = createApp(config, { createBot: factory });
 * ```
 */
export function createAgentBotFactory(
  config: AgentConfig,
  options: AgentFactoryOptions = {},
): AgentBotFactory {
  const providers = options.providers ?? createProviders(config);
  const cache = options.cache ?? new AudioCache();
  const outcomes = new CallOutcomes();
  const deps = {
    config,
    providers,
    cache,
    outcomes,
    clock: options.clock ?? systemClock,
    chunkBytes: options.chunkBytes ?? DEFAULT_CHUNK_BYTES,
    hooks: options.hooks ?? {},
    detectors: options.detectors,
  };
  const factory = (info: CallInfo, output: CallOutput) =>
    new AgentBot(info, output, deps);
  return Object.assign(factory, { cache, outcomes });
}

/**
 * The last turns of a bot's call, if it keeps a timeline (the agent does):
 * what the session's monitoring entry shows.
 *
 * @example
 * ```ts ignore
 * session.turns = () => botTimeline(bot);
 * ```
 */
export function botTimeline(bot: Bot): TurnSummary[] | undefined {
  return bot instanceof AgentBot ? bot.timeline() : undefined;
}
