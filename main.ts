/**
 * exovoice: answers Exotel Voicebot calls.
 *
 * Starts {@linkcode serve} with the environment's settings and, on SIGTERM
 * or SIGINT, drains: refuses new calls, lets live ones finish for up to
 * `DRAIN_TIMEOUT_S`, ends the rest with 1001, and exits 0. A second signal
 * exits at once. A bad setting exits 1 naming the variable.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { ConfigError } from "./src/config.ts";
import { type ExovoiceServer, serve } from "./src/serve.ts";

if (import.meta.main) {
  // systemd sets no HOSTNAME: without it INSTANCE_ID would be random at
  // every start, and a restart could not close the records a crash left.
  const hostname = Deno.env.get("HOSTNAME") ?? machineName();
  let server: ExovoiceServer;
  try {
    server = await serve({ env: hostname ? { HOSTNAME: hostname } : {} });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // Logging is not configured yet: the error goes straight to stderr.
    // deno-lint-ignore no-console
    console.error(`exovoice: ${error.message}`);
    Deno.exit(1);
  }
  const log = getLogger(["exovoice", "main"]);
  const { drainTimeoutS } = server.config;
  let draining = false;
  const stop = async (signal: Deno.Signal) => {
    if (draining) {
      log.warn("{signal} received again: exiting without waiting", { signal });
      Deno.exit(1);
    }
    draining = true;
    log.info(
      "{signal} received: draining {calls} live calls for up to {seconds} s",
      { signal, calls: server.liveCalls, seconds: drainTimeoutS },
    );
    const cut = await server.drain(drainTimeoutS * 1000);
    log.info("Drained; {cut} calls were cut at the deadline", { cut });
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
}

/** The machine's name from /etc/hostname, or undefined where there is none. */
function machineName(): string | undefined {
  try {
    return Deno.readTextFileSync("/etc/hostname").trim() || undefined;
  } catch {
    return undefined;
  }
}
