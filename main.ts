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
import {
  type Agents,
  createAgentsBotFactory,
  describeAgentConfig,
  loadAgentConfig,
  loadAgents,
} from "./src/bots/agent/mod.ts";

if (import.meta.main) {
  const env = Deno.env.toObject();
  let config: Config;
  let agents: Agents | undefined;
  try {
    config = loadConfig(env);
    if (config.bot === "agent") {
      const file = env.AGENT_FILE?.trim();
      if (file) agents = loadAgents(file, env);
      else {
        const agent = loadAgentConfig(env);
        agents = {
          agents: new Map([[agent.name, agent]]),
          defaultAgent: agent.name,
        };
      }
    }
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
  for (const [name, agent] of agents?.agents ?? []) {
    log.info("Agent {name}: {agent}", {
      name,
      agent: describeAgentConfig(agent),
      tools: agent.tools.map((tool) => tool.definition.name),
    });
  }
  const metrics = new ExovoiceMetrics({
    version: VERSION,
    instanceId: config.instanceId,
  });
  const createBot = agents &&
    createAgentsBotFactory(agents, {
      chunkBytes: config.chunkBytes,
      hooks: {
        providerError: ({ provider, kind }) =>
          metrics.providerError(provider, kind),
        toolCall: ({ name, outcome, latencyMs }) =>
          metrics.toolCall(name, outcome, latencyMs),
      },
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
