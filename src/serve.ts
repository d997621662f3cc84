/**
 * {@linkcode serve}: everything `main.ts` does before it waits for signals,
 * as a function a program can call — settings, logging, the bot, the
 * server — so the command line and the library run one code path.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { BotFactory } from "./bots/bot.ts";
import {
  type AgentBotFactory,
  type Agents,
  createAgentsBotFactory,
  describeAgentConfig,
  loadAgentConfig,
  loadAgents,
  loadSpeechDetectors,
} from "./bots/agent/mod.ts";
import {
  agentConfigOf,
  type AgentDefinition,
} from "./bots/agent/define_agent.ts";
import type { LoadAgentsOptions } from "./bots/agent/agent_file.ts";
import type { CodeTool, ToolResult } from "./bots/agent/tool_runner.ts";
import {
  createRealtimeBotFactory,
  loadRealtimeConfig,
  type RealtimeBotFactory,
} from "./bots/realtime/mod.ts";
import type { ProviderError } from "./providers/provider_error.ts";
import type { RealtimeConfig } from "./bots/realtime/config.ts";
import { type Config, ConfigError, type Env, loadConfig } from "./config.ts";
import { configureLogging } from "./log.ts";
import { ExovoiceMetrics } from "./metrics/exovoice_metrics.ts";
import { type RunningServer, startServer, VERSION } from "./server.ts";
import { ProviderHealth } from "./providers/fallback/provider_health.ts";
import { type Clock, systemClock } from "./call/clock.ts";

/** Options of {@linkcode serve}. */
export interface ServeOptions {
  /**
   * Settings by their environment variable names (`ADMIN_TOKEN`, `BOT`,
   * `AGENT_PROMPT`, `CALL_WEBHOOK_URL`, … as the README lists them), over
   * the process environment's. Checked exactly as the environment is: a bad
   * value rejects with a `ConfigError` naming the variable. A key set to
   * `undefined` unsets what the environment says.
   */
  env?: Env;
  /**
   * Whether the process environment applies under {@linkcode env}; default
   * true (it needs `--allow-env`). With false only `env` and the defaults
   * apply, so nothing outside the program changes how it runs.
   */
  readEnv?: boolean;
  /** The address to listen on; overrides `HOST` (default `0.0.0.0`). */
  hostname?: string;
  /** The port to listen on, 0 for any free one; overrides `PORT` (default 3000). */
  port?: number;
  /**
   * The bot that answers every call, created per call: a
   * {@linkcode BotFactory}. Overrides `BOT`; `AGENT_*` settings are then
   * neither read nor checked.
   */
  bot?: BotFactory;
  /**
   * The name `/health` and the logs give {@linkcode bot}; default `custom`.
   */
  botName?: string;
  /**
   * Whether to send exovoice's logs to stdout at `LOG_LEVEL` in
   * `LOG_FORMAT` (default true). Pass false when the program configures
   * LogTape itself; exovoice logs under the category `["exovoice"]`.
   */
  logging?: boolean;
  /** Aborting it shuts the server down, as {@linkcode ExovoiceServer.shutdown} does. */
  signal?: AbortSignal;
  /**
   * The agent (see `defineAgent`) that answers calls, instead of
   * `AGENT_FILE` or the `AGENT_*` prompt settings. Vendor keys still come
   * from the settings, and settings given there override the agent's.
   */
  agent?: AgentDefinition;
  /**
   * More agents, chosen per call by the socket URL's `agent=NAME`; calls
   * naming none get {@linkcode agent}, else the one named `default`.
   */
  agents?: AgentDefinition[];
  /** Code tools offered to every agent, whichever way it was defined. */
  tools?: CodeTool[];
  /**
   * Time and timers for the whole server (calls, deadlines, records,
   * heartbeats, provider breakers); the system clock by default. Tests pass
   * a fake one to drive them without waiting.
   */
  clock?: Clock;
}

/** A server {@linkcode serve} started. */
export interface ExovoiceServer extends AsyncDisposable {
  /** The address it listens on (the port it picked, when asked for 0). */
  readonly addr: Deno.NetAddr;
  /** Its base URL, e.g. `http://127.0.0.1:8080`; `https` with TLS. */
  readonly url: string;
  /** The settings it runs with. */
  readonly config: Config;
  /** Live calls right now. */
  readonly liveCalls: number;
  /** Settles once a drain or shutdown has finished: the server stopped listening and closed its KV. */
  readonly finished: Promise<void>;
  /**
   * Refuses new calls, waits up to `timeoutMs` for live calls to end on
   * their own, ends the rest with 1001, writes their records, stops
   * listening and closes its KV. Resolves with the number of calls cut.
   * Calling it again returns the first drain's result.
   */
  drain(timeoutMs: number): Promise<number>;
  /**
   * A {@linkcode ExovoiceServer.drain} with `DRAIN_TIMEOUT_S` (default 30 s)
   * to wait: returns at once when no call is live. `await using` calls it.
   */
  shutdown(): Promise<void>;
}

const log = getLogger(["exovoice", "main"]);

/**
 * Starts exovoice: reads and checks the settings, configures logging,
 * builds the bot (`options.bot`, else the one `BOT` names) and serves.
 *
 * @throws {ConfigError} for a bad setting, naming the variable.
 * @example Echo every caller, on a free port, from settings given as values
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { serve } from "./serve.ts";
 *
 * await using server = await serve({
 *   readEnv: false,
 *   env: { KV_PATH: ":memory:", LOG_LEVEL: "error" },
 *   hostname: "127.0.0.1",
 *   port: 0,
 * });
 * const health = await (await fetch(`${server.url}/health`)).json();
 * assertEquals(health.status, "ok");
 * ```
 */
export async function serve(
  options: ServeOptions = {},
): Promise<ExovoiceServer> {
  const env = settingsOf(options);
  const config = loadConfig(env);
  const custom = options.bot;
  const realtime = !custom && config.bot === "realtime"
    ? loadRealtimeConfig(env)
    : undefined;
  const agents = custom ||
      (config.bot === "echo" && !options.agent && !options.agents)
    ? undefined
    : agentsOf(options, env, { cascade: !realtime });
  if (options.logging ?? true) {
    await configureLogging({
      level: config.logLevel,
      format: config.logFormat,
      revealPhoneNumbers: config.logPhoneNumbers,
    });
  }
  logAgents(agents, options.tools);
  // The agents' provider breakers, shared by every call and shown by /metrics.
  const clock = options.clock ?? systemClock;
  const providerHealth = new ProviderHealth(clock);
  const metrics = new ExovoiceMetrics({
    version: VERSION,
    instanceId: config.instanceId,
    providerHealth,
    clock,
  });
  const agentFactory = agents &&
    await agentBotFactory(agents, {
      realtime,
      config,
      options,
      metrics,
      providerHealth,
    });
  const createBot: BotFactory | undefined = agentFactory ?? custom;
  const running = await startServer(config, {
    clock,
    services: { metrics },
    createBot,
    botName: custom
      ? options.botName ?? "custom"
      : realtime
      ? "realtime"
      : agents
      ? "agent"
      : undefined,
    outcomeOf: agentFactory &&
      ((callSid) => agentFactory.outcomes.get(callSid)),
    checkAgent: agentFactory?.checkAgent,
  });
  return exovoiceServer(running, config, options.signal);
}

/** Logs each agent's settings and tools as the server starts. */
function logAgents(
  agents: Agents | undefined,
  codeTools: ServeOptions["tools"],
): void {
  for (const [name, agent] of agents?.agents ?? []) {
    log.info("Agent {name}: {agent}", {
      name,
      agent: describeAgentConfig(agent),
      tools: [
        ...agent.tools.map((tool) => tool.definition.name),
        ...(codeTools ?? []).map((tool) => tool.name),
      ],
    });
  }
}

/** The bot factory for `agents`: speech-to-speech when `realtime` is set, else the cascade. */
async function agentBotFactory(
  agents: Agents,
  parts: {
    realtime: RealtimeConfig | undefined;
    config: Config;
    options: ServeOptions;
    metrics: ExovoiceMetrics;
    providerHealth: ProviderHealth;
  },
): Promise<AgentBotFactory | RealtimeBotFactory> {
  const { realtime, config, options, metrics } = parts;
  const factoryOptions = {
    chunkBytes: config.chunkBytes,
    tools: options.tools,
    hooks: {
      providerError: ({ provider, kind }: ProviderError) =>
        metrics.providerError(provider, kind),
      toolCall: ({ name, outcome, latencyMs }: ToolResult) =>
        metrics.toolCall(name, outcome, latencyMs),
    },
  };
  if (realtime) {
    return createRealtimeBotFactory(realtime, agents, factoryOptions);
  }
  // One detector model for the server, as the default agent's settings say.
  const defaultAgent = agents.agents.get(agents.defaultAgent ?? "") ??
    [...agents.agents.values()][0];
  const detectors = await loadSpeechDetectors(defaultAgent);
  return createAgentsBotFactory(agents, {
    ...factoryOptions,
    detectors: detectors.create,
    health: parts.providerHealth,
  });
}

/** The agents: given as values, else `AGENT_FILE`'s, else the one the `AGENT_*` settings describe. */
function agentsOf(
  options: ServeOptions,
  env: Env,
  load: LoadAgentsOptions,
): Agents {
  const definitions = [
    ...(options.agent ? [options.agent] : []),
    ...(options.agents ?? []),
  ];
  if (definitions.length > 0) {
    const agents = new Map<string, ReturnType<typeof agentConfigOf>>();
    for (const definition of definitions) {
      const config = agentConfigOf(definition, env, load);
      if (agents.has(config.name)) {
        throw new ConfigError(
          "agents",
          `Invalid agents: two agents named "${config.name}": expected each name once`,
        );
      }
      agents.set(config.name, config);
    }
    const defaultAgent = options.agent
      ? options.agent.name ?? "default"
      : agents.has("default")
      ? "default"
      : agents.size === 1
      ? [...agents.keys()][0]
      : undefined;
    return { agents, defaultAgent };
  }
  const file = env.AGENT_FILE?.trim();
  if (file) return loadAgents(file, env, load);
  const agent = loadAgentConfig(env, load);
  return { agents: new Map([[agent.name, agent]]), defaultAgent: agent.name };
}

/** The settings `options` asks for: the environment (unless not read) under `env`. */
function settingsOf(options: ServeOptions): Env {
  const env: Record<string, string | undefined> = {
    ...(options.readEnv ?? true ? Deno.env.toObject() : {}),
    ...options.env,
  };
  if (options.hostname !== undefined) env.HOST = options.hostname;
  if (options.port !== undefined) env.PORT = String(options.port);
  return env;
}

function exovoiceServer(
  running: RunningServer,
  config: Config,
  signal: AbortSignal | undefined,
): ExovoiceServer {
  const { addr } = running;
  const host = addr.hostname.includes(":")
    ? `[${addr.hostname}]`
    : addr.hostname;
  const finished = Promise.withResolvers<void>();
  const drain = (timeoutMs: number) => {
    signal?.removeEventListener("abort", onAbort);
    const cut = running.drain(timeoutMs);
    cut.then(() => finished.resolve(), finished.reject);
    return cut;
  };
  const shutdown = async () => void await drain(config.drainTimeoutS * 1000);
  const onAbort = () => void shutdown();
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) onAbort();
  return {
    addr,
    url: `${config.tls ? "https" : "http"}://${host}:${addr.port}`,
    config,
    get liveCalls() {
      return running.registry.size;
    },
    finished: finished.promise,
    drain,
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}
