/**
 * `GET /voicebot/sessions`: the live calls, each its monitoring view
 * (`summarizeCall` in `call/call_snapshot.ts`); `?scope=all` adds every
 * instance sharing the KV.
 *
 * @module
 */

import { jsonResponse } from "../http/json.ts";
import { summarizeCall } from "../call/call_snapshot.ts";
import type { SessionRegistry } from "../call/registry.ts";
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
  const sessions = [...deps.registry.values()].map((session) =>
    summarizeCall(session, { turns: session.report?.()?.turns })
  );
  return jsonResponse({ total: sessions.length, sessions });
}
