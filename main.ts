/**
 * exovoice: answers Exotel Voicebot calls.
 *
 * Reads the configuration from the environment, starts the server and, on
 * SIGTERM or SIGINT, ends live calls and exits.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { ConfigError, loadConfig } from "./src/config.ts";
import { configureLogging } from "./src/log.ts";
import { startServer } from "./src/server.ts";

if (import.meta.main) {
  let config;
  try {
    config = loadConfig(Deno.env.toObject());
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // Logging is not configured yet: the error goes straight to stderr.
    // deno-lint-ignore no-console
    console.error(`exovoice: ${error.message}`);
    Deno.exit(1);
  }
  await configureLogging(config.logLevel, config.logFormat);
  const server = startServer(config);
  const log = getLogger(["exovoice", "main"]);
  let stopping = false;
  const stop = async (signal: Deno.Signal) => {
    if (stopping) return;
    stopping = true;
    log.info("{signal} received: ending {calls} live calls", {
      signal,
      calls: server.registry.size,
    });
    await server.shutdown();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
}
