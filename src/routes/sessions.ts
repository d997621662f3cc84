/**
 * `GET /voicebot/sessions`: the live calls, in the seed's JSON shape.
 *
 * @module
 */

import { jsonResponse } from "../http/json.ts";
import { type SessionRegistry, summarizeSession } from "../call/registry.ts";

/** Answers `{"total": n, "sessions": [...]}`. */
export function handleSessions(
  _request: Request,
  registry: SessionRegistry,
): Response {
  const sessions = [...registry.values()].map(summarizeSession);
  return jsonResponse({ total: sessions.length, sessions });
}
