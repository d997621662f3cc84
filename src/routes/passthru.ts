/**
 * `GET /api/v1/exotel/passthru`: tells an Exotel Passthru applet, placed right
 * after the Voicebot applet, whether the bot handed the call over. Exotel
 * takes the Passthru's 200 branch on a 200 answer and its other branch on a
 * 302, so the flow connects the caller to a person only when the agent used
 * its `transfer` tool.
 *
 * Exotel gives the Passthru how the stream ended (`Stream[Status]`,
 * `Stream[Duration]`, `Stream[RecordingUrl]`, `Stream[DisconnectedBy]`):
 * these are merged into the call's Exotel status, shown with its record as
 * `exotel.stream`. With `STATUS_CALLBACK_TOKEN` set they are kept only when
 * the Passthru URL carries the token (`?token=` or Basic credentials); the
 * answer does not depend on it.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { jsonResponse, readParams } from "../http/json.ts";
import type { CallStore } from "../records/call_store.ts";
import { parseStreamResult } from "../records/call_status.ts";
import { hasStatusToken } from "./status_callback.ts";

const log = getLogger(["exovoice", "routes", "passthru"]);

/** Where the stream's result is kept. */
export interface PassthruOptions {
  /** The call records; the stream's result is not kept without. */
  store?: CallStore;
  /** `STATUS_CALLBACK_TOKEN`. */
  token?: string;
}

/** How a call left the bot, by Exotel's CallSid. */
export type OutcomeLookup = (callSid: string) => string | undefined;

/** Answers 200 `{"transfer": true}` for a transferred call, else 302 `{"transfer": false}`. */
export async function handlePassthru(
  request: Request,
  outcomeOf: OutcomeLookup,
  options: PassthruOptions = {},
): Promise<Response> {
  const params = await readParams(request);
  const callSid = String(params.CallSid ?? params.call_id ?? "");
  const stream = parseStreamResult(params);
  if (stream && options.store && hasStatusToken(request, options)) {
    try {
      await options.store.mergeStatus(stream.callSid, stream);
    } catch (error) {
      // The flow must go on: the answer routes the caller.
      log.warn("Stream result of call {callId} not stored: {error}", {
        callId: stream.callSid,
        error,
      });
    }
  }
  const outcome = callSid === "" ? undefined : outcomeOf(callSid);
  const transfer = outcome === "transfer";
  return jsonResponse(
    { callSid, outcome: outcome ?? null, transfer },
    transfer ? 200 : 302,
  );
}
