/**
 * `GET /api/v1/exotel/passthru`: tells an Exotel Passthru applet, placed right
 * after the Voicebot applet, whether the bot handed the call over. Exotel
 * takes the Passthru's 200 branch on a 200 answer and its other branch on a
 * 302, so the flow connects the caller to a person only when the agent used
 * its `transfer` tool.
 *
 * @module
 */

import { jsonResponse, readParams } from "../http/json.ts";

/** How a call left the bot, by Exotel's CallSid. */
export type OutcomeLookup = (callSid: string) => string | undefined;

/** Answers 200 `{"transfer": true}` for a transferred call, else 302 `{"transfer": false}`. */
export async function handlePassthru(
  request: Request,
  outcomeOf: OutcomeLookup,
): Promise<Response> {
  const params = await readParams(request);
  const callSid = String(params.CallSid ?? params.call_id ?? "");
  const outcome = callSid === "" ? undefined : outcomeOf(callSid);
  const transfer = outcome === "transfer";
  return jsonResponse(
    { callSid, outcome: outcome ?? null, transfer },
    transfer ? 200 : 302,
  );
}
