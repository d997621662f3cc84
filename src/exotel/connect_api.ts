/**
 * Outbound calls through Exotel's Connect API (`/v1/Accounts/{sid}/Calls`):
 * placing a call, either through an App Bazaar flow or straight to our bot's
 * WebSocket, and reading a call's details back.
 *
 * Every failure is one of two errors: {@linkcode InvalidCallRequestError} for
 * a request we refuse to send, {@linkcode ExotelApiError} for anything that
 * went wrong on the wire. Neither ever carries the API key or token.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { ConnectApi } from "./connect_api.ts";
 *
 * // Stands in for api.in.exotel.com: the call is queued, then completed.
 * await using exotel = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   (request) =>
 *     Response.json({
 *       Call: request.method === "POST"
 *         ? { Sid: "CA42", Status: "queued" }
 *         : { Sid: "CA42", Status: "completed", Duration: "42" },
 *     }),
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
 * const call = await api.placeCall({
 *   to: "+919876543210",
 *   target: {
 *     mode: "stream",
 *     streamUrl: "wss://bot.example.com/voicebot/ws?sample-rate=16000",
 *   },
 *   timeLimit: 600,
 * });
 * assertEquals(call.status, "queued");
 * const later = await api.getCall(call.sid);
 * assertEquals(later.status, "completed");
 * assertEquals(later.duration, 42);
 * ```
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";

const logger = getLogger(["exovoice", "exotel", "connect_api"]);

/** Everything needed to talk to the Connect API. */
export interface ExotelApiConfig {
  /** `EXOTEL_API_KEY`: the Basic auth user name. */
  apiKey: string;
  /** `EXOTEL_API_TOKEN`: the Basic auth password. */
  apiToken: string;
  /** `EXOTEL_ACCOUNT_SID`: the account, part of every path. */
  accountSid: string;
  /** `EXOTEL_CALLER_ID`: the ExoPhone shown to the person called. */
  callerId: string;
  /** `EXOTEL_SUBDOMAIN`: `api.exotel.com` (Singapore) or `api.in.exotel.com` (Mumbai). */
  subdomain: string;
  /** `EXOTEL_API_BASE_URL`: replaces `https://{subdomain}`, e.g. a fake server in tests. */
  baseUrl?: string;
  /** `EXOTEL_APP_ID`: the flow that flow-mode calls are connected to. */
  appId?: string;
  /** How long one request may take, in milliseconds. */
  timeoutMs: number;
}

/** Where an answered call goes. */
export type CallTarget =
  /** An App Bazaar flow (its Voicebot applet holds the WebSocket URL); `appId` defaults to the configured one. */
  | { mode: "flow"; appId?: string }
  /** Straight to a bidirectional stream, no flow needed. */
  | {
    mode: "stream";
    /** `ws://` or `wss://`, at most {@linkcode MAX_STREAM_URL_LENGTH} characters. */
    streamUrl: string;
    /** A label for the stream, at most {@linkcode MAX_STREAM_NAME_LENGTH} characters. */
    streamName?: string;
  };

/** The events a status callback can be subscribed to. */
export type StatusCallbackEvent = "terminal" | "answered" | "ringing";

/** How a recording keeps the two sides: merged or one track each. */
export type RecordingChannels = "single" | "dual";

/** One outbound call to place. */
export interface PlaceCallRequest {
  /** The number to dial (Exotel's `From`); see {@linkcode normalizePhoneNumber}. */
  to: string;
  /** Where the call goes once answered. */
  target: CallTarget;
  /** The ExoPhone to show; defaults to the configured one. */
  callerId?: string;
  /** Record the call. */
  record?: boolean;
  /** Recording layout, when recording. */
  recordingChannels?: RecordingChannels;
  /** Longest the call may last, seconds, 1 to {@linkcode MAX_TIME_LIMIT_SECONDS}. */
  timeLimit?: number;
  /** How long to ring, seconds. */
  timeOut?: number;
  /** Free text handed to the flow's applets, at most {@linkcode MAX_CUSTOM_FIELD_LENGTH} characters. */
  customField?: string;
  /** An `http(s)` URL Exotel posts status updates to. */
  statusCallback?: string;
  /** Which events reach {@linkcode PlaceCallRequest.statusCallback}; Exotel's default is `terminal`. */
  statusCallbackEvents?: StatusCallbackEvent[];
  /** The body format of status callbacks; Exotel's default is a form. */
  statusCallbackContentType?: "multipart/form-data" | "application/json";
}

/** The statuses Exotel documents; others pass through as they come. */
export type CallStatus =
  | "queued"
  | "ringing"
  | "in-progress"
  | "completed"
  | "failed"
  | "busy"
  | "no-answer"
  | "canceled";

/**
 * A call as Exotel describes it. `from` and `to` are Exotel's own: for a call
 * placed through this API `from` is the number dialled. Times are Exotel's
 * `YYYY-MM-DD HH:mm:ss` strings in the account's time zone, unconverted.
 */
export interface CallDetails {
  /** Exotel's id for the call. */
  sid: string;
  /** Where the call stands; lower-cased. */
  // The intersection keeps editor completion for the known values while still
  // admitting statuses Exotel adds later.
  status: CallStatus | (string & Record<never, never>);
  /** Exotel's `From`. */
  from?: string;
  /** Exotel's `To`. */
  to?: string;
  /** E.g. `outbound-api`. */
  direction?: string;
  /** The account the call belongs to. */
  accountSid?: string;
  /** The parent call, for legs. */
  parentCallSid?: string;
  /** The ExoPhone's id or number. */
  phoneNumberSid?: string;
  /** When the call record was created. */
  dateCreated?: string;
  /** When the call record last changed. */
  dateUpdated?: string;
  /** When the call started. */
  startTime?: string;
  /** When the call ended. */
  endTime?: string;
  /** Seconds; filled in some minutes after the call ends. */
  duration?: number;
  /** The call's cost in the account's currency; filled in after the call ends. */
  price?: number;
  /** Who answered, when Exotel knows. */
  answeredBy?: string;
  /** The caller's name, when Exotel knows. */
  callerName?: string;
  /** The number the call was forwarded from. */
  forwardedFrom?: string;
  /** The recording, when the call was recorded. */
  recordingUrl?: string;
  /** The `CustomField` the call was placed with. */
  customField?: string;
  /** Exotel's path of this call resource. */
  uri?: string;
}

/** Options every request takes. */
export interface RequestOptions {
  /** Cancels the request (in addition to the configured timeout). */
  signal?: AbortSignal;
}

/** Longest call Exotel allows, seconds (4 hours). */
export const MAX_TIME_LIMIT_SECONDS = 14_400;
/** Longest `StreamUrl` Exotel accepts, query included. */
export const MAX_STREAM_URL_LENGTH = 600;
/** Longest `CustomField` Exotel accepts. */
export const MAX_CUSTOM_FIELD_LENGTH = 128;
/** Longest `StreamName` Exotel accepts. */
export const MAX_STREAM_NAME_LENGTH = 32;

/** A call request we refuse to send: a field is missing, malformed or past Exotel's limit. */
export class InvalidCallRequestError extends Error {
  /** Machine-readable reason. */
  readonly code = "invalid_request";
  /** The offending {@linkcode PlaceCallRequest} field, e.g. `timeLimit`. */
  readonly field: string;

  /** Creates the error. */
  constructor(field: string, message: string) {
    super(message);
    this.name = "InvalidCallRequestError";
    this.field = field;
  }
}

/** How a Connect API request failed. */
export type ExotelApiErrorKind =
  /** Exotel answered with an error status (see `status`). */
  | "http"
  /** No answer within the configured timeout. */
  | "timeout"
  /** Exotel could not be reached (DNS, refused, reset, TLS). */
  | "network"
  /** The caller's signal cancelled the request. */
  | "aborted"
  /** Exotel answered success with a body we cannot use. */
  | "protocol";

/** A Connect API request that failed. Messages never contain the API key or token. */
export class ExotelApiError extends Error {
  /** What kind of failure it was. */
  readonly kind: ExotelApiErrorKind;
  /** Exotel's HTTP status, for `http` (and `protocol`) failures. */
  readonly status?: number;
  /** Exotel's `RestException.Code`, when it sent one. */
  readonly exotelCode?: string;
  /** Exotel's `RestException.Message`, when it sent one. */
  readonly exotelMessage?: string;

  /** Creates the error. */
  constructor(
    kind: ExotelApiErrorKind,
    message: string,
    options?: {
      status?: number;
      exotelCode?: string;
      exotelMessage?: string;
      cause?: unknown;
    },
  ) {
    super(message, { cause: options?.cause });
    this.name = "ExotelApiError";
    this.kind = kind;
    this.status = options?.status;
    this.exotelCode = options?.exotelCode;
    this.exotelMessage = options?.exotelMessage;
  }
}

const PHONE_FORMATTING = /[\s\-().]/g;
const E164 = /^\+[1-9]\d{7,14}$/;
// 0 + STD code + subscriber (landlines) or 0 + mobile: eleven digits in all.
const INDIAN_TRUNK = /^0[1-9]\d{9}$/;
const INDIAN_MOBILE = /^[6-9]\d{9}$/;
const INDIAN_MOBILE_WITH_COUNTRY = /^91[6-9]\d{9}$/;

/**
 * Checks a phone number in a form Exotel dials and returns it without
 * formatting (spaces, dashes, dots, parentheses).
 *
 * Accepted: E.164 (`+919876543210`), Indian numbers with the trunk prefix
 * (`09876543210`, landlines with their STD code `08030752400`), bare
 * ten-digit mobiles (`9876543210`) and `91` + mobile (`919876543210`).
 *
 * @example
 * ```ts
 * import { assertEquals, assertThrows } from "@std/assert";
 * assertEquals(normalizePhoneNumber("+91 98765-43210"), "+919876543210");
 * assertThrows(
 *   () => normalizePhoneNumber("hello", { field: "to" }),
 *   InvalidCallRequestError,
 *   '"hello"',
 * );
 * ```
 *
 * @throws {InvalidCallRequestError} naming `options.field` (default `to`).
 */
export function normalizePhoneNumber(
  value: string,
  options?: { field?: string },
): string {
  const field = options?.field ?? "to";
  const cleaned = value.replace(PHONE_FORMATTING, "");
  if (
    E164.test(cleaned) || INDIAN_TRUNK.test(cleaned) ||
    INDIAN_MOBILE.test(cleaned) || INDIAN_MOBILE_WITH_COUNTRY.test(cleaned)
  ) {
    return cleaned;
  }
  throw new InvalidCallRequestError(
    field,
    `Invalid phone number "${
      preview(value)
    }" for "${field}": expected E.164 like +919876543210 or an Indian number like 09876543210, 9876543210 or 08030752400`,
  );
}

/**
 * Reads Exotel's `{"Call": {...}}` answer (the connect and call details APIs
 * share it). Liberal: values may be strings, numbers or `null`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * assertEquals(
 *   parseCallDetails({ Call: { Sid: "abc", Status: "completed", Duration: "42" } }),
 *   { sid: "abc", status: "completed", duration: 42 },
 * );
 * ```
 *
 * @throws {ExotelApiError} of kind `protocol` when there is no `Call.Sid` or `Call.Status`.
 */
export function parseCallDetails(body: unknown): CallDetails {
  const call = isRecord(body) && isRecord(body.Call) ? body.Call : undefined;
  const sid = text(call?.Sid);
  const status = text(call?.Status);
  if (call === undefined || sid === undefined || status === undefined) {
    throw new ExotelApiError(
      "protocol",
      'Unexpected answer from Exotel: expected {"Call": {"Sid", "Status", ...}}',
    );
  }
  const details: CallDetails = { sid, status: status.toLowerCase() };
  const optional: [keyof CallDetails, string][] = [
    ["from", "From"],
    ["to", "To"],
    ["direction", "Direction"],
    ["accountSid", "AccountSid"],
    ["parentCallSid", "ParentCallSid"],
    ["phoneNumberSid", "PhoneNumberSid"],
    ["dateCreated", "DateCreated"],
    ["dateUpdated", "DateUpdated"],
    ["startTime", "StartTime"],
    ["endTime", "EndTime"],
    ["answeredBy", "AnsweredBy"],
    ["callerName", "CallerName"],
    ["forwardedFrom", "ForwardedFrom"],
    ["recordingUrl", "RecordingUrl"],
    ["customField", "CustomField"],
    ["uri", "Uri"],
  ];
  const strings: Record<string, string> = {};
  for (const [key, wire] of optional) {
    const value = text(call[wire]);
    if (value !== undefined) strings[key] = value;
  }
  const duration = decimal(call.Duration);
  const price = decimal(call.Price);
  return {
    ...details,
    ...strings,
    ...(duration === undefined ? {} : { duration }),
    ...(price === undefined ? {} : { price }),
  };
}

/**
 * A client for Exotel's Connect API: places outbound calls and reads their
 * details. One instance per account; safe to share between requests.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * // Stands in for api.in.exotel.com and keeps the form it was sent.
 * let sent = new URLSearchParams();
 * await using exotel = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   async (request) => {
 *     sent = new URLSearchParams(await request.text());
 *     return Response.json({ Call: { Sid: "CA7", Status: "in-progress" } });
 *   },
 * );
 * const api = new ConnectApi({
 *   apiKey: "key",
 *   apiToken: "token",
 *   accountSid: "acme1",
 *   callerId: "08047491899",
 *   subdomain: "api.in.exotel.com",
 *   baseUrl: `http://127.0.0.1:${exotel.addr.port}`,
 *   appId: "123456",
 *   timeoutMs: 10_000,
 * });
 * const { sid, status } = await api.placeCall({
 *   to: "09876543210",
 *   target: { mode: "flow" },
 *   customField: "order-42",
 * });
 * assertEquals([sid, status], ["CA7", "in-progress"]);
 * assertEquals(sent.get("CustomField"), "order-42");
 * assertEquals(sent.get("Url"), "http://my.exotel.com/acme1/exoml/start_voice/123456");
 * ```
 */
export class ConnectApi {
  #accountSid: string;
  #callerId: string;
  #appId: string | undefined;
  #baseUrl: string;
  #timeoutMs: number;
  #authorization: string;
  #secrets: string[];

  /**
   * Creates the client. Makes no request.
   *
   * @throws {TypeError} for an empty credential, a bad base URL or timeout.
   * @throws {InvalidCallRequestError} for a caller id that is not a phone number.
   */
  constructor(config: ExotelApiConfig) {
    for (const key of ["apiKey", "apiToken", "accountSid"] as const) {
      if (config[key].trim() === "") {
        throw new TypeError(`Invalid Exotel ${key}: must not be empty`);
      }
    }
    if (!Number.isFinite(config.timeoutMs) || config.timeoutMs <= 0) {
      throw new TypeError(
        `Invalid Exotel timeout "${config.timeoutMs}": expected a positive number of milliseconds`,
      );
    }
    this.#accountSid = config.accountSid.trim();
    this.#callerId = normalizePhoneNumber(config.callerId, {
      field: "callerId",
    });
    const appId = config.appId?.trim();
    this.#appId = appId === "" ? undefined : appId;
    this.#baseUrl = resolveBaseUrl(config);
    this.#timeoutMs = config.timeoutMs;
    const credentials = `${config.apiKey}:${config.apiToken}`;
    const encoded = new TextEncoder().encode(credentials).toBase64();
    this.#authorization = `Basic ${encoded}`;
    // Longest first, so a key that contains the token is not half-redacted.
    this.#secrets = [config.apiKey, config.apiToken, credentials, encoded]
      .filter((secret) => secret.length >= 4)
      .sort((a, b) => b.length - a.length);
  }

  /** The flow that flow-mode calls go to, when one is configured. */
  get appId(): string | undefined {
    return this.#appId;
  }

  /** The ExoPhone used when a request names none. */
  get callerId(): string {
    return this.#callerId;
  }

  /** Where requests go, e.g. `https://api.in.exotel.com`. */
  get baseUrl(): string {
    return this.#baseUrl;
  }

  /**
   * Places an outbound call: Exotel dials `request.to` and, once answered,
   * connects it to the flow or the stream.
   *
   * @example
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { ConnectApi } from "./connect_api.ts";
   *
   * await using exotel = Deno.serve(
   *   { hostname: "127.0.0.1", port: 0, onListen() {} },
   *   () => Response.json({ Call: { Sid: "CA9", Status: "queued" } }),
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
   * const call = await api.placeCall({
   *   to: "+919876543210",
   *   target: { mode: "stream", streamUrl: "wss://bot.example.com/voicebot/ws" },
   * });
   * assertEquals(call.sid, "CA9");
   * ```
   *
   * @throws {InvalidCallRequestError} before any request, for a field past Exotel's limits.
   * @throws {ExotelApiError} when Exotel refuses, fails, or cannot be reached in time.
   */
  async placeCall(
    request: PlaceCallRequest,
    options?: RequestOptions,
  ): Promise<CallDetails> {
    const form = this.#connectForm(request);
    const body = await this.#send(
      "POST",
      `/Calls/connect.json`,
      { form, signal: options?.signal },
    );
    const call = parseCallDetails(body);
    logger.info("Exotel accepted call {sid} with status {status}", {
      sid: call.sid,
      status: call.status,
      mode: request.target.mode,
    });
    return call;
  }

  /**
   * Reads a call's details: status, times, duration, price, recording.
   *
   * @throws {InvalidCallRequestError} for a sid that cannot be one.
   * @throws {ExotelApiError} of kind `http` with `status` 404 for an unknown call.
   */
  async getCall(sid: string, options?: RequestOptions): Promise<CallDetails> {
    if (!CALL_SID.test(sid)) {
      throw new InvalidCallRequestError(
        "sid",
        `Invalid call sid "${
          preview(sid)
        }": expected letters, digits, "-" or "_"`,
      );
    }
    const body = await this.#send("GET", `/Calls/${sid}.json`, {
      signal: options?.signal,
    });
    return parseCallDetails(body);
  }

  #connectForm(request: PlaceCallRequest): URLSearchParams {
    const form = new URLSearchParams();
    form.set("From", normalizePhoneNumber(request.to, { field: "to" }));
    form.set(
      "CallerId",
      request.callerId === undefined
        ? this.#callerId
        : normalizePhoneNumber(request.callerId, { field: "callerId" }),
    );
    form.set("CallType", "trans");
    this.#setTarget(form, request.target);
    if (request.record !== undefined) {
      form.set("Record", String(request.record));
    }
    if (request.recordingChannels !== undefined) {
      checkOneOf("recordingChannels", request.recordingChannels, [
        "single",
        "dual",
      ]);
      form.set("RecordingChannels", request.recordingChannels);
    }
    if (request.timeLimit !== undefined) {
      checkSeconds("timeLimit", request.timeLimit, MAX_TIME_LIMIT_SECONDS);
      form.set("TimeLimit", String(request.timeLimit));
    }
    if (request.timeOut !== undefined) {
      checkSeconds("timeOut", request.timeOut, Number.MAX_SAFE_INTEGER);
      form.set("TimeOut", String(request.timeOut));
    }
    if (request.customField !== undefined) {
      checkLength("customField", request.customField, MAX_CUSTOM_FIELD_LENGTH);
      form.set("CustomField", request.customField);
    }
    setStatusCallback(form, request);
    return form;
  }

  /** Where the call goes: an app flow (`Url`) or straight to a stream. */
  #setTarget(form: URLSearchParams, target: PlaceCallRequest["target"]): void {
    if (target.mode === "flow") {
      form.set("Url", this.#flowUrl(target.appId));
      return;
    }
    form.set("StreamUrl", checkStreamUrl(target.streamUrl));
    form.set("StreamType", "bidirectional");
    if (target.streamName !== undefined) {
      checkLength("streamName", target.streamName, MAX_STREAM_NAME_LENGTH);
      form.set("StreamName", target.streamName);
    }
  }

  #flowUrl(requested: string | undefined): string {
    const appId = requested ?? this.#appId;
    if (appId === undefined) {
      throw new InvalidCallRequestError(
        "appId",
        "Flow mode needs an app id: set EXOTEL_APP_ID or name one in the request",
      );
    }
    if (!APP_ID.test(appId)) {
      throw new InvalidCallRequestError(
        "appId",
        `Invalid app id "${preview(appId)}": expected letters and digits`,
      );
    }
    // Exotel documents this exact http:// URL; it is an identifier, never fetched by us.
    return `http://my.exotel.com/${
      encodeURIComponent(this.#accountSid)
    }/exoml/start_voice/${appId}`;
  }

  async #send(
    method: "GET" | "POST",
    path: string,
    options: { form?: URLSearchParams; signal?: AbortSignal },
  ): Promise<unknown> {
    const url = `${this.#baseUrl}/v1/Accounts/${
      encodeURIComponent(this.#accountSid)
    }${path}`;
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const signal = options.signal
      ? AbortSignal.any([timeout, options.signal])
      : timeout;
    let status = 0;
    let text: string;
    try {
      const response = await fetch(url, {
        method,
        headers: {
          authorization: this.#authorization,
          accept: "application/json",
        },
        body: options.form,
        redirect: "manual",
        signal,
      });
      status = response.status;
      text = await response.text();
    } catch (error) {
      throw this.#transportError(error, { timeout, caller: options.signal });
    }
    logger.debug("Exotel answered {method} {path} with {status}", {
      method,
      path,
      status,
    });
    const body = parseJson(text);
    const exception = restException(body);
    if (status >= 200 && status < 300 && exception === undefined) {
      if (body === undefined) {
        throw new ExotelApiError(
          "protocol",
          `Unexpected answer from Exotel: ${status} with a body that is not JSON`,
          { status },
        );
      }
      return body;
    }
    throw this.#httpError(status, exception);
  }

  #transportError(
    error: unknown,
    signals: { timeout: AbortSignal; caller?: AbortSignal },
  ): ExotelApiError {
    if (signals.timeout.aborted) {
      logger.warn("Exotel did not answer within {timeoutMs} ms", {
        timeoutMs: this.#timeoutMs,
      });
      return new ExotelApiError(
        "timeout",
        `Exotel did not answer within ${this.#timeoutMs} ms`,
      );
    }
    if (signals.caller?.aborted) {
      return new ExotelApiError("aborted", "Exotel request was cancelled");
    }
    const reason = this.#redact(
      error instanceof Error ? error.message : String(error),
    );
    logger.warn("Could not reach Exotel at {baseUrl}: {reason}", {
      baseUrl: this.#baseUrl,
      reason,
    });
    return new ExotelApiError(
      "network",
      `Could not reach Exotel at ${this.#baseUrl}: ${reason}`,
    );
  }

  #httpError(
    status: number,
    exception: { message?: string; code?: string; status?: number } | undefined,
  ): ExotelApiError {
    // Exotel has been seen to put its error in a 200 body: trust its own Status then.
    const effective = status >= 200 && status < 300
      ? exception?.status ?? 400
      : status;
    const exotelMessage = exception?.message === undefined
      ? undefined
      : this.#redact(exception.message);
    logger.warn("Exotel refused the request with {status}: {exotelMessage}", {
      status: effective,
      exotelMessage,
      exotelCode: exception?.code,
    });
    return new ExotelApiError(
      "http",
      exotelMessage === undefined
        ? `Exotel answered ${effective}`
        : `Exotel answered ${effective}: "${preview(exotelMessage, 300)}"`,
      { status: effective, exotelCode: exception?.code, exotelMessage },
    );
  }

  #redact(text: string): string {
    let redacted = text;
    for (const secret of this.#secrets) {
      redacted = redacted.replaceAll(secret, "[redacted]");
    }
    return redacted;
  }
}

const CALL_SID = /^[A-Za-z0-9_-]{1,128}$/;
const APP_ID = /^[A-Za-z0-9_-]{1,64}$/;

function resolveBaseUrl(config: ExotelApiConfig): string {
  // The docs write the subdomain as "@api.in.exotel.com"; accept that, a bare
  // host, or a full URL.
  const raw = config.baseUrl?.trim() ||
    config.subdomain.trim().replace(/^@/, "");
  const withScheme = /^https?:\/\//i.test(raw) ? raw : `https://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new TypeError(
      `Invalid Exotel API address "${
        preview(raw)
      }": expected a host like api.in.exotel.com or an http(s) URL`,
    );
  }
  if (url.username !== "" || url.password !== "") {
    throw new TypeError(
      "Invalid Exotel API address: put the API key and token in EXOTEL_API_KEY and EXOTEL_API_TOKEN, not in the URL",
    );
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, "");
}

/** The status callback fields of the Connect form. */
function setStatusCallback(
  form: URLSearchParams,
  request: PlaceCallRequest,
): void {
  if (request.statusCallback !== undefined) {
    form.set("StatusCallback", checkHttpUrl(request.statusCallback));
  }
  request.statusCallbackEvents?.forEach((event, index) => {
    checkOneOf("statusCallbackEvents", event, [
      "terminal",
      "answered",
      "ringing",
    ]);
    // Exotel reads the array from indexed form keys.
    form.set(`StatusCallbackEvents[${index}]`, event);
  });
  if (request.statusCallbackContentType !== undefined) {
    checkOneOf(
      "statusCallbackContentType",
      request.statusCallbackContentType,
      ["multipart/form-data", "application/json"],
    );
    form.set("StatusCallbackContentType", request.statusCallbackContentType);
  }
}

function checkStreamUrl(value: string): string {
  // The stream URL may carry the bot's own credentials (wss://user:pass@host),
  // so errors describe it without quoting it.
  if (value.length > MAX_STREAM_URL_LENGTH) {
    throw new InvalidCallRequestError(
      "streamUrl",
      `Stream URL is ${value.length} characters long: Exotel allows at most ${MAX_STREAM_URL_LENGTH}`,
    );
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidCallRequestError(
      "streamUrl",
      "Invalid stream URL: expected an absolute ws:// or wss:// URL",
    );
  }
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw new InvalidCallRequestError(
      "streamUrl",
      `Invalid stream URL scheme "${url.protocol}": expected ws: or wss:`,
    );
  }
  return value;
}

function checkHttpUrl(value: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== "http:" && url?.protocol !== "https:") {
    throw new InvalidCallRequestError(
      "statusCallback",
      `Invalid status callback "${
        preview(value)
      }": expected an http:// or https:// URL`,
    );
  }
  return value;
}

function checkSeconds(field: string, value: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER
      ? "a whole number of seconds, at least 1"
      : `a whole number of seconds from 1 to ${max}`;
    throw new InvalidCallRequestError(
      field,
      `Invalid ${field} "${value}": expected ${range}`,
    );
  }
}

function checkLength(field: string, value: string, max: number): void {
  if (value.length > max) {
    throw new InvalidCallRequestError(
      field,
      `Invalid ${field} "${
        preview(value)
      }": ${value.length} characters, Exotel allows at most ${max}`,
    );
  }
}

function checkOneOf(field: string, value: string, allowed: string[]): void {
  if (!allowed.includes(value)) {
    throw new InvalidCallRequestError(
      field,
      `Invalid ${field} "${preview(String(value))}": expected ${
        allowed.join(", ")
      }`,
    );
  }
}

function restException(
  body: unknown,
): { message?: string; code?: string; status?: number } | undefined {
  if (!isRecord(body) || !isRecord(body.RestException)) return undefined;
  const exception = body.RestException;
  const status = Number(exception.Status);
  return {
    message: text(exception.Message),
    code: text(exception.Code),
    status: Number.isInteger(status) && status >= 400 ? status : undefined,
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function text(value: unknown): string | undefined {
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (typeof value !== "string") return undefined;
  const trimmed = value.trim();
  return trimmed === "" ? undefined : trimmed;
}

function decimal(value: unknown): number | undefined {
  const raw = text(value);
  if (raw === undefined) return undefined;
  const number = Number(raw);
  return Number.isFinite(number) ? number : undefined;
}

function preview(value: string, max = 40): string {
  return value.length > max ? `${value.slice(0, max)}…` : value;
}
