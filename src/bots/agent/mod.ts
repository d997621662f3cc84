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
import type {
  BotFactory,
  BotPreparation,
  CallInfo,
  CallOutput,
  ConnectedCall,
} from "../bot.ts";
import { AgentBot, type AgentHooks } from "./agent.ts";
import type { AgentConfig } from "./config.ts";
import { AudioCache } from "./audio_cache.ts";
import { CallOutcomes } from "./outcomes.ts";
import { PreparedCall } from "./prepared_call.ts";
import { type AgentProviders, createProviders } from "./providers.ts";
import { ProviderHealth } from "../../providers/fallback/provider_health.ts";
import type { Agents } from "./agent_file.ts";
import {
  type CodeTool,
  codeTool,
  type RunnableTool,
  ToolRunner,
} from "./tool_runner.ts";
import type { SpeechDetectorFactory } from "../../audio/speech_detector.ts";

export { AgentBot, type AgentHooks, VOICE_INSTRUCTIONS } from "./agent.ts";
export {
  type AgentConfig,
  describeAgentConfig,
  loadAgentConfig,
  type LoadAgentConfigOptions,
} from "./config.ts";
export { AudioCache } from "./audio_cache.ts";
export {
  AgentFileError,
  type Agents,
  loadAgentFile,
  loadAgents,
  type LoadAgentsOptions,
} from "./agent_file.ts";
export { type AgentExit, CallOutcomes } from "./outcomes.ts";
export { type AgentProviders, createProviders } from "./providers.ts";
export {
  ProviderHealth,
  type ProviderHealthEntry,
} from "../../providers/fallback/provider_health.ts";
export {
  type BreakerSettings,
  CircuitBreaker,
} from "../../providers/fallback/circuit_breaker.ts";
export type { TurnSummary } from "./timeline.ts";
export {
  type CodeTool,
  codeTool,
  type RunnableTool,
  type ToolCallInfo,
  type ToolOutcome,
  type ToolResult,
  type ToolRunContext,
  ToolRunner,
} from "./tool_runner.ts";
export { webhookTool, type WebhookToolConfig } from "./webhook_tool.ts";
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
  /** Code tools, offered besides the configuration's webhook tools. */
  tools?: readonly CodeTool[];
  /** Epoch milliseconds for `{{date}}` and `{{time}}`; the clock's `epochMs()` by default. */
  wallClock?: () => number;
  /** Where `end_call` and `transfer` are remembered; a fresh store by default. */
  outcomes?: CallOutcomes;
  /** Each call's voice-activity detector (see {@linkcode loadSpeechDetectors}); the energy detector by default. */
  detectors?: SpeechDetectorFactory;
  /** The providers' circuit breakers, shared by every call (and every agent); a fresh board on `clock` by default. */
  health?: ProviderHealth;
}

/** The agent's {@linkcode BotFactory}, plus what it shares between calls. */
export interface AgentBotFactory extends BotFactory {
  (info: CallInfo, output: CallOutput): AgentBot;
  /** Synthesised greetings and fallback lines, by text, voice and rate. */
  readonly cache: AudioCache;
  /** How recent calls left the agent, by call id: for a Passthru applet after the Voicebot applet. */
  readonly outcomes: CallOutcomes;
  /** Why a call asking for agent `name` (undefined: none named) cannot be answered, if it cannot. */
  checkAgent(name: string | undefined): string | undefined;
  /** The providers' circuit breakers and fallback counts, for `/metrics`. */
  readonly health: ProviderHealth;
  /** Readies a call at Exotel's `connected`: speech-to-text opens then, at the socket URL's rate. */
  connected(call: ConnectedCall): BotPreparation;
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
  const health = options.health ??
    new ProviderHealth(options.clock ?? systemClock);
  const clock = options.clock ?? systemClock;
  const providers = options.providers ??
    createProviders(config, { health, clock });
  const cache = options.cache ?? new AudioCache();
  const outcomes = options.outcomes ??
    new CallOutcomes({ clock });
  const tools = [...config.tools, ...(options.tools ?? []).map(codeTool)];
  refuseBuiltinNames(tools, config.builtinTools);
  const deps = {
    toolRunner: tools.length > 0 ? new ToolRunner(tools) : undefined,
    wallClock: options.wallClock,
    config,
    providers,
    cache,
    outcomes,
    clock,
    chunkBytes: options.chunkBytes ?? DEFAULT_CHUNK_BYTES,
    hooks: options.hooks ?? {},
    detectors: options.detectors,
    health,
  };
  const factory = (info: CallInfo, output: CallOutput) =>
    new AgentBot(info, output, deps);
  const connected = (call: ConnectedCall): BotPreparation => {
    const prepared = new PreparedCall({
      providers,
      sampleRate: call.sampleRate,
      language: config.language,
      languages: config.languages,
      clock,
    });
    return {
      create(info, output) {
        try {
          return new AgentBot(info, output, { ...deps, prepared });
        } catch (error) {
          void prepared.cancel();
          throw error;
        }
      },
      cancel: () => void prepared.cancel(),
    };
  };
  // One agent answers every call, whatever agent= says.
  return Object.assign(factory, {
    cache,
    outcomes,
    health,
    connected,
    checkAgent: () => undefined,
  });
}

/** Throws when a tool takes the name of a built-in that is on: the model would see two. */
function refuseBuiltinNames(
  tools: readonly RunnableTool[],
  builtins: AgentConfig["builtinTools"],
): void {
  for (const tool of tools) {
    const { name } = tool.definition;
    if (
      (name === "end_call" && builtins.endCall) ||
      (name === "transfer" && builtins.transfer)
    ) {
      throw new TypeError(
        `Invalid tool name "${name}": it is built in; turn the built-in off (builtinTools) to replace it`,
      );
    }
  }
}

/** A call asked for an agent this server does not have. */
export class UnknownAgentError extends Error {
  /** Creates the error for `name`. */
  constructor(name: string | undefined, known: readonly string[]) {
    super(
      name === undefined
        ? `No agent named in the socket URL: expected agent= one of ${
          known.join(", ")
        } (or an agent file named default)`
        : `Unknown agent "${name}": expected one of ${known.join(", ")}`,
    );
    this.name = "UnknownAgentError";
  }
}

/**
 * The factory for several agents (an `AGENT_FILE` directory): each call
 * gets the agent its socket URL names with `agent=`, or the default one.
 * A call naming an unknown agent, or none when there is no default, is
 * refused: with {@linkcode AgentBotFactory.checkAgent} given to the server,
 * the upgrade gets a 404 JSON error; should a bot still be asked for, it
 * cannot be created, so the stream closes (code 1011) and the error is
 * logged.
 *
 * @example
 * ```ts ignore
 * const factory = createAgentsBotFactory(loadAgents("agents/", env));
 * ```
 */
export function createAgentsBotFactory(
  agents: Agents,
  options: AgentFactoryOptions = {},
): AgentBotFactory {
  const cache = options.cache ?? new AudioCache();
  const outcomes = new CallOutcomes({ clock: options.clock ?? systemClock });
  const health = options.health ??
    new ProviderHealth(options.clock ?? systemClock);
  const factories = new Map<string, AgentBotFactory>();
  for (const [name, config] of agents.agents) {
    factories.set(
      name,
      createAgentBotFactory(config, { ...options, cache, outcomes, health }),
    );
  }
  const known = [...factories.keys()];
  const factory = (info: CallInfo, output: CallOutput) => {
    const name = info.agent ?? agents.defaultAgent;
    const chosen = name === undefined ? undefined : factories.get(name);
    if (chosen === undefined) throw new UnknownAgentError(info.agent, known);
    return chosen(info, output);
  };
  const checkAgent = (name: string | undefined) => {
    const chosen = name ?? agents.defaultAgent;
    return chosen !== undefined && factories.has(chosen)
      ? undefined
      : new UnknownAgentError(name, known).message;
  };
  // The URL's agent= is known at `connected`; a custom parameter naming
  // another agent at `start` wins, and what was readied is let go.
  const connected = (call: ConnectedCall): BotPreparation => {
    const expected = call.agent ?? agents.defaultAgent;
    const chosen = expected === undefined ? undefined : factories.get(expected);
    const preparation = chosen?.connected(call);
    return {
      create(info, output) {
        const name = info.agent ?? agents.defaultAgent;
        if (preparation && name === expected) {
          return preparation.create(info, output);
        }
        preparation?.cancel();
        return factory(info, output);
      },
      cancel: () => preparation?.cancel(),
    };
  };
  return Object.assign(factory, {
    cache,
    outcomes,
    health,
    checkAgent,
    connected,
  });
}
