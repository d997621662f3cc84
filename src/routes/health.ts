/**
 * `GET /health`: liveness for load balancers, Docker's HEALTHCHECK and people.
 *
 * @module
 */

import { jsonResponse } from "../http/json.ts";
import type { SessionRegistry } from "../call/registry.ts";

/** What the health report needs. */
export interface HealthDeps {
  /** The running version. */
  version: string;
  /** The bot answering calls. */
  bot: string;
  /** `performance.now()` at startup. */
  startedAt: number;
  /** Live sessions. */
  registry: SessionRegistry;
}

/** Answers `{"status":"ok","version","uptimeS","activeSessions","bot"}`. */
export function handleHealth(_request: Request, deps: HealthDeps): Response {
  return jsonResponse({
    status: "ok",
    version: deps.version,
    uptimeS: Math.round((performance.now() - deps.startedAt) / 1000),
    activeSessions: deps.registry.size,
    bot: deps.bot,
  });
}
