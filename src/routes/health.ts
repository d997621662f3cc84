/**
 * `GET /health`: liveness and load for load balancers, Docker's HEALTHCHECK
 * and people.
 *
 * @module
 */

import { jsonResponse } from "../http/json.ts";

/** What the health report shows. */
export interface Health {
  /** The running version. */
  version: string;
  /** The bot answering calls. */
  bot: string;
  /** Seconds since startup. */
  uptimeS: number;
  /** Live calls. */
  activeSessions: number;
  /** `MAX_SESSIONS`. */
  maxSessions: number;
  /** True once a drain has started: new calls are refused. */
  draining: boolean;
  /**
   * What is wrong beyond this process's control of calls: KV failing or
   * its file gone, another process with the same `INSTANCE_ID`.
   */
  problems?: string[];
}

/**
 * Answers `{"status": "ok" | "degraded" | "draining", "version", "uptimeS",
 * "activeSessions", "maxSessions", "saturation", "bot", "problems"}`; 503
 * while draining, so load balancers stop sending calls here. `degraded`
 * (KV failing, its file deleted, a duplicate `INSTANCE_ID`) still answers
 * 200: calls are answered as well as before, only what is kept of them is
 * at risk, and taking every instance sharing a broken KV out of a
 * balancer would turn lost records into lost calls. Alert on the status.
 */
export function handleHealth(_request: Request, health: Health): Response {
  const { draining, problems = [], ...fields } = health;
  return jsonResponse(
    {
      status: draining ? "draining" : problems.length > 0 ? "degraded" : "ok",
      ...fields,
      problems,
      saturation:
        Math.round(health.activeSessions / health.maxSessions * 1000) / 1000,
    },
    draining ? 503 : 200,
  );
}
