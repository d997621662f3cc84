/**
 * exovoice: answers Exotel Voicebot calls.
 *
 * Reads the configuration from the environment, starts the server and, on
 * SIGTERM or SIGINT, drains: refuses new calls, lets live ones finish for up to
 * `DRAIN_TIMEOUT_S`, ends the rest with 1001, and exits 0. A second signal
 * exits at once.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type Config, ConfigError, loadConfig } from "./src/config.ts";
import { configureLogging } from "./src/log.ts";
import { startServer, VERSION } from "./src/server.ts";
import { ExovoiceMetrics } from "./src/metrics/exovoice_metrics.ts";
import type { ProviderError } from "./src/providers/provider_error.ts";
import {
  type AgentConfig,
  createAgentBotFactory,
  describeAgentConfig,
  loadAgentConfig,
} from "./src/bots/agent/mod.ts";
import {
  createRealtimeBotFactory,
  loadRealtimeConfig,
  type RealtimeConfig,
} from "./src/bots/realtime/mod.ts";

if (import.meta.main) {
  const env = Deno.env.toObject();
  let config: Config;
  let agent: AgentConfig | undefined;
  let realtime: RealtimeConfig | undefined;
  try {
    config = loadConfig(env);
    if (config.bot === "agent") agent = loadAgentConfig(env);
    if (config.bot === "realtime") realtime = loadRealtimeConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // Logging is not configured yet: the error goes straight to stderr.
    // deno-lint-ignore no-console
    console.error(`exovoice: ${error.message}`);
    Deno.exit(1);
  }
  await configureLogging({
    level: config.logLevel,
    format: config.logFormat,
    revealPhoneNumbers: config.logPhoneNumbers,
  });
  const log = getLogger(["exovoice", "main"]);
  if (agent) log.info("Agent: {agent}", { agent: describeAgentConfig(agent) });
  const metrics = new ExovoiceMetrics({
    version: VERSION,
    instanceId: config.instanceId,
  });
  const hooks = {
    providerError: ({ provider, kind }: ProviderError) =>
      metrics.providerError(provider, kind),
  };
  const createBot = agent
    ? createAgentBotFactory(agent, { chunkBytes: config.chunkBytes, hooks })
    : realtime &&
      createRealtimeBotFactory(realtime, {
        chunkBytes: config.chunkBytes,
        hooks,
      });
  const server = await startServer(config, {
    services: { metrics },
    createBot,
    outcomeOf: createBot && ((callSid) => createBot.outcomes.get(callSid)),
  });
  let draining = false;
  const stop = async (signal: Deno.Signal) => {
    if (draining) {
      log.warn("{signal} received again: exiting without waiting", { signal });
      Deno.exit(1);
    }
    draining = true;
    log.info(
      "{signal} received: draining {calls} live calls for up to {seconds} s",
      {
        signal,
        calls: server.registry.size,
        seconds: config.drainTimeoutS,
      },
    );
    const cut = await server.drain(config.drainTimeoutS * 1000);
    log.info("Drained; {cut} calls were cut at the deadline", { cut });
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
}
