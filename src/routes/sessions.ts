/**
 * `GET /voicebot/sessions`: the live calls, in the seed's JSON shape;
 * `?scope=all` adds every instance sharing the KV.
 *
 * @module
 */

import { jsonResponse } from "../http/json.ts";
import { type SessionRegistry, summarizeSession } from "../call/registry.ts";
import type { LiveSessions } from "../instances/live_sessions.ts";

/** Where the sessions come from. */
export interface SessionsDeps {
  /** This instance's live calls. */
  registry: SessionRegistry;
  /** Every instance's, when instances share a KV. */
  live?: LiveSessions;
}

/**
 * Answers `{"total": n, "sessions": [...]}`; with `?scope=all`, every
 * instance's sessions, each with its `instanceId`, and the instances seen.
 */
export async function handleSessions(
  request: Request,
  deps: SessionsDeps,
): Promise<Response> {
  const scope = new URL(request.url).searchParams.get("scope");
  if (scope === "all" && deps.live) {
    return jsonResponse(await deps.live.listAll());
  }
  const sessions = [...deps.registry.values()].map(summarizeSession);
  return jsonResponse({ total: sessions.length, sessions });
}
