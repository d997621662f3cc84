/**
 * `POST /call` places an outbound call through Exotel, `GET /call/:sid`
 * reads it back. Input is checked here, so a bad request never reaches
 * Exotel; Exotel's own failures are translated into statuses that say whose
 * fault they are (our client's, our server's configuration, or Exotel's).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { maskPhoneNumber } from "../log.ts";
import {
  type CallDetails,
  type CallTarget,
  type ConnectApi,
  ExotelApiError,
  InvalidCallRequestError,
  normalizePhoneNumber,
  type PlaceCallRequest,
  type RecordingChannels,
  type StatusCallbackEvent,
} from "../exotel/connect_api.ts";
import { HttpError, jsonResponse, readParams } from "../http/json.ts";
import {
  MAX_CUSTOM_PARAMETERS,
  MAX_CUSTOM_QUERY_CHARS,
} from "../http/public_url.ts";
import { isSampleRate } from "../audio/pcm.ts";

const logger = getLogger(["exovoice", "routes", "outbound_call"]);

/** What the outbound call handlers need from the rest of the server. */
export interface OutboundCallDeps {
  /** The Connect API client; `undefined` when `EXOTEL_*` is not configured. */
  api: ConnectApi | undefined;
  /** Our own voicebot WebSocket URL for a stream-mode call, as Exotel should dial it. */
  streamUrlFor(
    request: Request,
    options: { sampleRate: number; customParameters: Record<string, string> },
  ): string;
}

const CUSTOM_KEY = /^[A-Za-z0-9_.-]{1,64}$/;
// Keys the stream URL already uses for itself.
const RESERVED_KEYS = new Set(["sample-rate", "call_id", "callSid", "token"]);

const NOT_CONFIGURED =
  "Outbound calls are not configured: set EXOTEL_API_KEY, EXOTEL_API_TOKEN, EXOTEL_ACCOUNT_SID and EXOTEL_CALLER_ID";

type Mode = CallTarget["mode"];

/**
 * `POST /call`: places an outbound call. Takes JSON or a form:
 * `{"to", "mode"?, "sampleRate"?, "customParameters"?, "customField"?,
 * "timeLimit"?, "timeOut"?, "record"?, "recordingChannels"?,
 * "statusCallback"?, "statusCallbackEvents"?, "callerId"?}`.
 *
 * Answers 201 `{"sid", "status", "to", "from", "direction", "mode",
 * "streamUrl"?}` where `to` is the number dialled and `from` the caller id
 * shown; `streamUrl` has any credentials in it masked.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { ConnectApi } from "../exotel/connect_api.ts";
 *
 * // Stands in for Exotel's Connect API.
 * await using exotel = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   () => Response.json({ Call: { Sid: "CA5", Status: "queued" } }),
 * );
 * const api = new ConnectApi({
 *   apiKey: "key",
 *   apiToken: "token",
 *   accountSid: "acme1",
 *   callerId: "08047491899",
 *   subdomain: "api.in.exotel.com",
 *   baseUrl: `http://127.0.0.1:${exotel.addr.port}`,
 *   timeoutMs: 10_000,
 * });
 * const response = await handlePlaceCall(
 *   new Request("http://localhost/call", {
 *     method: "POST",
 *     headers: { "content-type": "application/json" },
 *     body: JSON.stringify({ to: "+919876543210", mode: "stream" }),
 *   }),
 *   { api, streamUrlFor: () => "wss://bot.example.com/voicebot/ws" },
 * );
 * assertEquals(response.status, 201);
 * const body = await response.json();
 * assertEquals([body.sid, body.mode, body.streamUrl], [
 *   "CA5",
 *   "stream",
 *   "wss://bot.example.com/voicebot/ws",
 * ]);
 * ```
 *
 * @throws {HttpError} 400 naming the bad field; 503 when not configured;
 * 502 when Exotel refuses our credentials or fails; 504 when it times out.
 */
export async function handlePlaceCall(
  request: Request,
  deps: OutboundCallDeps,
): Promise<Response> {
  if (request.method !== "POST") {
    throw new HttpError(405, {
      code: "method_not_allowed",
      message: `Method "${request.method}" not allowed: use POST`,
      headers: { allow: "POST" },
    });
  }
  const api = configured(deps.api);
  const params = await readParams(request);
  const mode = parseMode(params.mode, api.appId);
  const fields = parseCallFields(params);
  let target: CallTarget = { mode: "flow" };
  let streamUrl: string | undefined;
  if (mode === "stream") {
    streamUrl = deps.streamUrlFor(request, {
      sampleRate: parseSampleRate(params.sampleRate),
      customParameters: parseCustomParameters(params.customParameters),
    });
    target = { mode: "stream", streamUrl };
  } else {
    for (const field of ["sampleRate", "customParameters"]) {
      if (params[field] !== undefined) {
        throw invalid(
          field,
          `Invalid "${field}": it applies only to mode "stream", and this call is in mode "flow"`,
        );
      }
    }
  }
  const placeRequest: PlaceCallRequest = { ...fields, target };
  let call: CallDetails;
  try {
    // No request signal: once Exotel may have dialled, a client hanging up on
    // us must not turn a placed call into an unknown one.
    call = await api.placeCall(placeRequest);
  } catch (error) {
    throw toHttpError(error, { operation: "place" });
  }
  logger.info("Placed outbound call {sid} to {to} in {mode} mode", {
    sid: call.sid,
    to: maskPhoneNumber(placeRequest.to),
    mode,
  });
  return jsonResponse(
    {
      sid: call.sid,
      status: call.status,
      to: call.from ?? placeRequest.to,
      from: placeRequest.callerId ?? api.callerId,
      direction: call.direction ?? "outbound-api",
      mode,
      ...(streamUrl === undefined ? {} : { streamUrl: maskUrl(streamUrl) }),
    },
    201,
  );
}

/**
 * `GET /call/:sid`: the call's details as Exotel reports them (camelCase
 * fields of {@linkcode CallDetails}: `sid`, `status`, `from`, `to`,
 * `direction`, `startTime`, `endTime`, `duration`, `price`, `recordingUrl`,
 * … as present).
 *
 * @throws {HttpError} 404 for a call Exotel does not know; 400 for a sid
 * that cannot be one; 503, 502 and 504 as for {@linkcode handlePlaceCall}.
 */
export async function handleCallStatus(
  // Its signal is left alone: reading `request.signal` makes Deno.serve warn
  // about its legacy abort behaviour, and the configured timeout bounds the wait.
  _request: Request,
  sid: string,
  deps: OutboundCallDeps,
): Promise<Response> {
  const api = configured(deps.api);
  try {
    return jsonResponse(await api.getCall(sid));
  } catch (error) {
    throw toHttpError(error, { operation: "status", sid });
  }
}

function configured(api: ConnectApi | undefined): ConnectApi {
  if (api === undefined) {
    throw new HttpError(503, {
      code: "not_configured",
      message: NOT_CONFIGURED,
    });
  }
  return api;
}

function parseMode(value: unknown, appId: string | undefined): Mode {
  if (value === undefined || value === "") {
    return appId === undefined ? "stream" : "flow";
  }
  if (value !== "flow" && value !== "stream") {
    throw invalid(
      "mode",
      `Invalid mode "${show(value)}": expected "flow" or "stream"`,
    );
  }
  if (value === "flow" && appId === undefined) {
    throw new HttpError(503, {
      code: "not_configured",
      message:
        'Mode "flow" needs EXOTEL_APP_ID set on the server; mode "stream" needs no flow',
    });
  }
  return value;
}

function parseCallFields(
  params: Record<string, unknown>,
): Omit<PlaceCallRequest, "target"> {
  if (params.to === undefined || params.to === "") {
    throw new HttpError(400, {
      code: "invalid_number",
      message: 'Missing "to": the number to call, e.g. +919876543210',
    });
  }
  const to = phone("to", params.to);
  const request: Omit<PlaceCallRequest, "target"> = { to };
  if (params.callerId !== undefined) {
    request.callerId = phone("callerId", params.callerId);
  }
  if (params.customField !== undefined) {
    request.customField = string("customField", params.customField);
  }
  if (params.timeLimit !== undefined) {
    request.timeLimit = integer("timeLimit", params.timeLimit);
  }
  if (params.timeOut !== undefined) {
    request.timeOut = integer("timeOut", params.timeOut);
  }
  if (params.record !== undefined) {
    request.record = boolean("record", params.record);
  }
  if (params.recordingChannels !== undefined) {
    request.recordingChannels = string(
      "recordingChannels",
      params.recordingChannels,
    ) as RecordingChannels;
  }
  if (params.statusCallback !== undefined) {
    request.statusCallback = string("statusCallback", params.statusCallback);
  }
  if (params.statusCallbackEvents !== undefined) {
    const events = params.statusCallbackEvents;
    const list = typeof events === "string" ? events.split(",") : events;
    if (!Array.isArray(list)) {
      throw invalid(
        "statusCallbackEvents",
        `Invalid statusCallbackEvents "${
          show(events)
        }": expected a list of "terminal", "answered" or "ringing"`,
      );
    }
    request.statusCallbackEvents = list.map((event) =>
      string("statusCallbackEvents", event).trim() as StatusCallbackEvent
    );
  }
  return request;
}

function parseSampleRate(value: unknown): number {
  if (value === undefined || value === "") return 8000;
  const rate = Number(value);
  if (
    (typeof value !== "number" && typeof value !== "string") ||
    !isSampleRate(rate)
  ) {
    throw invalid(
      "sampleRate",
      `Invalid sample rate "${show(value)}": expected 8000, 16000 or 24000`,
    );
  }
  return rate;
}

function parseCustomParameters(value: unknown): Record<string, string> {
  if (value === undefined || value === "") return {};
  let parsed: unknown = value;
  if (typeof value === "string") {
    // A form can only carry the object as JSON text.
    try {
      parsed = JSON.parse(value);
    } catch {
      parsed = undefined;
    }
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw invalid(
      "customParameters",
      `Invalid customParameters "${
        show(value)
      }": expected an object of up to ${MAX_CUSTOM_PARAMETERS} key/value pairs`,
    );
  }
  const entries = Object.entries(parsed);
  if (entries.length > MAX_CUSTOM_PARAMETERS) {
    throw invalid(
      "customParameters",
      `Invalid customParameters: ${entries.length} keys, Exotel passes on at most ${MAX_CUSTOM_PARAMETERS}`,
    );
  }
  const result: Record<string, string> = {};
  for (const [key, raw] of entries) {
    if (!CUSTOM_KEY.test(key) || RESERVED_KEYS.has(key)) {
      throw invalid(
        "customParameters",
        `Invalid customParameters key "${
          show(key)
        }": expected letters, digits, ".", "-" or "_", and not one of ${
          [...RESERVED_KEYS].join(", ")
        }`,
      );
    }
    if (!["string", "number", "boolean"].includes(typeof raw)) {
      throw invalid(
        "customParameters",
        `Invalid customParameters value for "${key}": expected a string, number or boolean`,
      );
    }
    result[key] = String(raw);
  }
  const query = new URLSearchParams(result).toString();
  if (query.length > MAX_CUSTOM_QUERY_CHARS) {
    throw invalid(
      "customParameters",
      `Invalid customParameters: ${query.length} characters of URL query, Exotel allows at most ${MAX_CUSTOM_QUERY_CHARS}`,
    );
  }
  return result;
}

function phone(field: string, value: unknown): string {
  if (typeof value !== "string" && typeof value !== "number") {
    throw new HttpError(400, {
      code: "invalid_number",
      message: `Invalid "${field}" "${show(value)}": expected a phone number`,
    });
  }
  try {
    return normalizePhoneNumber(String(value), { field });
  } catch (error) {
    if (error instanceof InvalidCallRequestError) {
      throw new HttpError(400, {
        code: "invalid_number",
        message: error.message,
      });
    }
    throw error;
  }
}

function string(field: string, value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  throw invalid(field, `Invalid ${field} "${show(value)}": expected a string`);
}

function integer(field: string, value: unknown): number {
  const number = typeof value === "string" && value.trim() !== ""
    ? Number(value)
    : value;
  if (typeof number !== "number" || !Number.isSafeInteger(number)) {
    throw invalid(
      field,
      `Invalid ${field} "${show(value)}": expected a whole number of seconds`,
    );
  }
  return number;
}

function boolean(field: string, value: unknown): boolean {
  if (value === true || value === "true" || value === "1" || value === 1) {
    return true;
  }
  if (value === false || value === "false" || value === "0" || value === 0) {
    return false;
  }
  throw invalid(field, `Invalid ${field} "${show(value)}": expected a boolean`);
}

function invalid(field: string, message: string): HttpError {
  return new HttpError(400, { code: `invalid_${snake(field)}`, message });
}

function toHttpError(
  error: unknown,
  context: { operation: "place" | "status"; sid?: string },
): unknown {
  if (error instanceof InvalidCallRequestError) {
    const code = error.field === "to" || error.field === "callerId"
      ? "invalid_number"
      : `invalid_${snake(error.field)}`;
    // The stream URL is ours, built from the request's customParameters.
    const message = error.field === "streamUrl"
      ? `${error.message} (shorten customParameters)`
      : error.message;
    return new HttpError(400, { code, message, cause: error });
  }
  if (!(error instanceof ExotelApiError)) return error;
  logger.warn("Exotel {operation} request failed ({kind} {status})", {
    operation: context.operation,
    kind: error.kind,
    status: error.status,
    sid: context.sid,
  });
  switch (error.kind) {
    case "timeout":
      return new HttpError(504, {
        code: "exotel_timeout",
        message: error.message,
        cause: error,
      });
    case "network":
    case "protocol":
      return new HttpError(502, {
        code: "exotel_unavailable",
        message: error.message,
        cause: error,
      });
    case "aborted":
      return new HttpError(503, {
        code: "cancelled",
        message: "The request was cancelled",
        cause: error,
      });
    case "http":
      return fromExotelStatus(error, context);
  }
}

function fromExotelStatus(
  error: ExotelApiError,
  context: { operation: "place" | "status"; sid?: string },
): HttpError {
  const status = error.status ?? 502;
  const said = error.exotelMessage === undefined
    ? ""
    : `: ${error.exotelMessage}`;
  if (status === 401 || status === 403) {
    // Exotel refusing us is our server's misconfiguration, not our client's
    // credentials being wrong: a 401 here would mislead the client.
    return new HttpError(502, {
      code: "exotel_auth_failed",
      message:
        `Exotel refused this server's credentials (${status}${said}): check EXOTEL_API_KEY, EXOTEL_API_TOKEN and EXOTEL_ACCOUNT_SID`,
      cause: error,
    });
  }
  if (status === 404 && context.operation === "status") {
    return new HttpError(404, {
      code: "call_not_found",
      message: `Call "${context.sid}" not found at Exotel${said}`,
      cause: error,
    });
  }
  if (status === 400 || status === 422) {
    return new HttpError(400, {
      code: "exotel_rejected",
      message: `Exotel rejected the call${said}`,
      cause: error,
    });
  }
  if (status === 429) {
    return new HttpError(429, {
      code: "exotel_rate_limited",
      message: `Exotel is rate limiting this account${said}`,
      cause: error,
    });
  }
  return new HttpError(502, {
    code: "exotel_error",
    message: `Exotel failed with ${status}${said}`,
    cause: error,
  });
}

function maskUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return value;
  }
  if (url.username !== "") url.username = "***";
  if (url.password !== "") url.password = "***";
  for (const key of [...url.searchParams.keys()]) {
    if (/token|secret|password|key|auth|sig/i.test(key)) {
      url.searchParams.set(key, "***");
    }
  }
  return url.toString();
}

function snake(field: string): string {
  return field.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

function show(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  const shown = text ?? String(value);
  return shown.length > 40 ? `${shown.slice(0, 40)}…` : shown;
}
