/**
 * The voicebot WebSocket endpoint: checks the handshake, reads the call's
 * parameters from the URL and hands the socket to a {@linkcode Call}. Who
 * may connect is decided before, by the upgrade guard
 * (`voicebot_upgrade.ts`).
 *
 * @module
 */

import { isSampleRate, type SampleRate } from "../audio/pcm.ts";
import { Call, type CallServices } from "../call/call.ts";
import { fromWebSocket } from "../call/socket.ts";
import { boundedPeerId } from "../exotel/protocol.ts";
import type { Credentials } from "../http/auth.ts";
import { HttpError } from "../http/json.ts";
import { checkWebSocketHandshake } from "../http/websocket_upgrade.ts";

/** What the endpoint needs. */
export interface VoicebotSocketDeps extends CallServices {
  /** Accepted credentials, checked by the upgrade guard; none means open. */
  credentials: Credentials;
  /** Called with every call accepted. */
  onCall?(call: Call): void;
  /** Why the URL's `agent=` (undefined when absent) cannot be served, if it cannot. */
  checkAgent?(name: string | undefined): string | undefined;
  /** How long a peer may take to answer our close before its connection is dropped, in ms; 5000 by default. */
  closeTimeoutMs?: number;
  /** Called when a connection is dropped because its peer did not answer our close, or misbehaved. */
  onSocketReleased?(): void;
  /** Called once an accepted connection is gone, however it ended. */
  onSocketGone?(): void;
}

const CALL_ID_PARAMS = ["call_id", "callSid", "callLogId", "CallSid"];

/** A peer's id from the URL, bounded as the protocol bounds the frames' ids. */
function optionalPeerId(id: string | null | undefined): string | undefined {
  return id ? boundedPeerId(id) : undefined;
}

/** Reads `sample-rate` from the URL, falling back to 8000 on anything Exotel does not stream. */
export function sampleRateFromQuery(query: URLSearchParams): SampleRate {
  const rate = Number(
    query.get("sample-rate") ?? query.get("sample_rate") ??
      query.get("sampleRate"),
  );
  return isSampleRate(rate) ? rate : 8000;
}

/**
 * Upgrades a request from `remoteAddress` (the client's address: the
 * socket's peer, or behind trusted proxies the one they saw) to a voicebot
 * call. It checks the handshake and `agent=`, not who may call: reach it
 * through `VoicebotUpgrade` (`voicebot_upgrade.ts`), which refuses first (drain,
 * allow-list, capacity, 426, credentials).
 *
 * @throws {HttpError} 400 or 426 for a malformed or unsupported handshake
 * (see {@linkcode checkWebSocketHandshake}), 404 for an `agent=` the server
 * does not have.
 */
export function handleVoicebotSocket(
  request: Request,
  remoteAddress: string,
  deps: VoicebotSocketDeps,
): Response {
  checkWebSocketHandshake(request);
  const query = new URL(request.url).searchParams;
  const refusal = deps.checkAgent?.(query.get("agent") ?? undefined);
  if (refusal !== undefined) {
    throw new HttpError(404, { code: "unknown_agent", message: refusal });
  }
  const { socket, response } = Deno.upgradeWebSocket(request);
  const call = new Call({
    socket: fromWebSocket(socket, {
      closeTimeoutMs: deps.closeTimeoutMs,
      clock: deps.clock,
      onReleased: deps.onSocketReleased,
      onGone: deps.onSocketGone,
    }),
    ...deps,
    request: {
      callId: optionalPeerId(
        CALL_ID_PARAMS.map((name) => query.get(name)).find((id) => id),
      ),
      streamSid: optionalPeerId(
        query.get("stream_sid") ?? query.get("streamSid"),
      ),
      sampleRate: sampleRateFromQuery(query),
      remoteAddress,
      agent: query.get("agent") ?? undefined,
    },
  });
  deps.onCall?.(call);
  return response;
}
