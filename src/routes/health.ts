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
}

/**
 * Answers `{"status": "ok" | "draining", "version", "uptimeS",
 * "activeSessions", "maxSessions", "saturation", "bot"}`; 503 while
 * draining, so load balancers stop sending calls here.
 */
export function handleHealth(_request: Request, health: Health): Response {
  const { draining, ...fields } = health;
  return jsonResponse(
    {
      status: draining ? "draining" : "ok",
      ...fields,
      saturation:
        Math.round(health.activeSessions / health.maxSessions * 1000) / 1000,
    },
    draining ? 503 : 200,
  );
}
