/**
 * The Exotel Voicebot WebSocket protocol: parsing inbound frames into typed
 * events and encoding outbound ones. Pure: strings in, values out.
 *
 * Liberal in what it accepts (snake_case and camelCase, strings or numbers,
 * fields at the top level or nested), strict in what it sends (the documented
 * minimal snake_case frames).
 *
 * @module
 */

/**
 * The `start` event's description of the call. Every string in it is the
 * peer's and is bounded here, once, to {@linkcode PEER_LIMITS}: whatever a
 * `start` carried, what the call keeps (its snapshot, record and live entry)
 * stays small.
 */
export interface StartInfo {
  /** Exotel's id for this stream. */
  streamSid: string;
  /** Exotel's id for the call. */
  callSid: string;
  /** The Exotel account. */
  accountSid: string;
  /** The caller's number. */
  from: string;
  /** The number called. */
  to: string;
  /**
   * Up to three `key=value` pairs from the applet URL (at most
   * {@linkcode PEER_LIMITS}`.parameters` kept).
   */
  customParameters: Record<string, string>;
  /** The declared encoding as sent; see {@linkcode parseAudioEncoding}. */
  encoding: string;
  /** The declared sample rate, when it is a number. */
  sampleRate?: number;
}

/**
 * How much of a peer's strings is kept. Ids (call, stream and account sids)
 * and numbers are short in every real call; a hostile or broken peer's may
 * not be, and what is kept ends up in KV keys (2 KiB) and values (64 KiB).
 */
export const PEER_LIMITS = {
  /** Characters of an id: a call, stream or account sid. */
  idChars: 128,
  /** Characters of a phone number (`from`, `to`). */
  numberChars: 64,
  /** Custom parameters kept: Exotel sends at most 3. */
  parameters: 10,
  /** Characters of a custom parameter's name, and of its value. */
  parameterChars: 256,
  /** Characters of a `stop` reason. */
  reasonChars: 200,
} as const;

/**
 * Cuts a peer's id (a call, stream or account sid, from a frame or the
 * socket's URL) to {@linkcode PEER_LIMITS}`.idChars`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(boundedPeerId("CA123"), "CA123");
 * assertEquals(boundedPeerId("x".repeat(5000)).length, 128);
 * ```
 */
export function boundedPeerId(id: string): string {
  return id.slice(0, PEER_LIMITS.idChars);
}

/** How the audio on the wire is coded: 16-bit linear PCM or G.711 μ-law. */
export type AudioEncoding = "pcm" | "mulaw";

/** What a declared `media_format.encoding` means. */
export interface DeclaredEncoding {
  /** The coding to use. */
  encoding: AudioEncoding;
  /** False for a name we do not recognise (treated as PCM). */
  recognised: boolean;
  /** A `rate=` parameter in the declaration, when it is a number. */
  sampleRate?: number;
}

const MULAW_NAMES =
  /^(audio\/)?(x-)?(mu-?law|µ-?law|μ-?law|u-?law|pcmu|g\.?711[-_]?u(law)?|basic)$/;
const PCM_NAMES =
  /^(audio\/)?(x-)?(raw(\/slin(16)?)?|slin(16)?|l16|linear(16)?|lpcm|pcm(_?s16le|16)?|s16le|wav)$/;

/**
 * Reads Exotel's `media_format.encoding`, liberally: any case, with or
 * without `audio/` and `x-`, with parameters after `;`. μ-law by any of its
 * names (`audio/x-mulaw;rate=8000`, `mulaw`, `ulaw`, `pcmu`, `g711_ulaw`, …);
 * 16-bit PCM as `audio/x-raw`, `raw`, `raw/slin`, `l16`, `linear16`, `pcm`, …
 * or nothing at all. Anything else is not recognised and treated as PCM, as
 * before μ-law existed.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * assertEquals(parseAudioEncoding("audio/x-mulaw;rate=8000"), {
 *   encoding: "mulaw",
 *   recognised: true,
 *   sampleRate: 8000,
 * });
 * assertEquals(parseAudioEncoding("audio/x-raw").encoding, "pcm");
 * assertEquals(parseAudioEncoding("opus").recognised, false);
 * ```
 */
export function parseAudioEncoding(declared: string): DeclaredEncoding {
  const [name, ...parameters] = declared.split(";");
  const normalised = name.trim().toLowerCase();
  let sampleRate: number | undefined;
  for (const parameter of parameters) {
    const [key, value] = parameter.split("=").map((part) => part.trim());
    if (key.toLowerCase() === "rate" && /^[0-9]{1,6}$/.test(value ?? "")) {
      sampleRate = Number(value);
    }
  }
  const rate = sampleRate === undefined ? {} : { sampleRate };
  if (MULAW_NAMES.test(normalised)) {
    return { encoding: "mulaw", recognised: true, ...rate };
  }
  const recognised = normalised === "" || PCM_NAMES.test(normalised);
  return { encoding: "pcm", recognised, ...rate };
}

/** Fields every event but `connected` may carry. */
export interface Sequenced {
  /** Exotel's message counter; informational. */
  sequenceNumber?: number;
  /** The stream the event belongs to, when given. */
  streamSid?: string;
}

/** An event Exotel sends us, parsed. */
export type InboundEvent =
  | { event: "connected" }
  | Sequenced & { event: "start"; start: StartInfo }
  | Sequenced & {
    event: "media";
    /** Media message counter; informational. */
    chunk?: number;
    /** Milliseconds, informational. */
    timestamp?: number;
    /** The decoded PCM. */
    payload: Uint8Array;
  }
  | Sequenced & { event: "dtmf"; digit: string; durationMs?: number }
  | Sequenced & { event: "mark"; name: string }
  | Sequenced & {
    event: "stop";
    reason: string;
    callSid?: string;
    accountSid?: string;
  }
  | Sequenced & { event: "clear" };

/** The names of the events in {@linkcode InboundEvent}. */
export type InboundEventName = InboundEvent["event"];

/** Why a frame could not be used. */
export type ProtocolErrorCode =
  | "invalid_json"
  | "not_an_object"
  | "unknown_event"
  | "invalid_payload"
  | "invalid_digit"
  | "missing_field";

/** A frame that could not be turned into an {@linkcode InboundEvent}. */
export class ProtocolError extends Error {
  /** Machine-readable reason, used as a counter label. */
  readonly code: ProtocolErrorCode;

  /** Creates the error. */
  constructor(code: ProtocolErrorCode, message: string) {
    super(message);
    this.name = "ProtocolError";
    this.code = code;
  }
}

/** The outcome of parsing one frame: never throws. */
export type ParseResult =
  | { ok: true; event: InboundEvent }
  | { ok: false; error: ProtocolError };

type Fields = Record<string, unknown>;

const DTMF_DIGIT = /^[0-9*#A-D]$/;

/**
 * Parses one text frame from Exotel.
 *
 * @example
 * ```ts
 * import { assert, assertEquals } from "@std/assert";
 *
 * const result = parseInboundFrame('{"event":"mark","mark":{"name":"utt-1"}}');
 * assert(result.ok && result.event.event === "mark");
 * assertEquals(result.event.name, "utt-1");
 *
 * // Bad input is an error value, never a throw: the call logs it and goes on.
 * const bad = parseInboundFrame("{not json");
 * assert(!bad.ok);
 * assert(bad.error instanceof ProtocolError);
 * ```
 */
export function parseInboundFrame(text: string): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return failure("invalid_json", `Invalid JSON frame "${preview(text)}"`);
  }
  if (!isFields(value)) {
    return failure(
      "not_an_object",
      `Invalid frame "${preview(text)}": expected a JSON object`,
    );
  }
  return parseEvent(value);
}

function parseEvent(frame: Fields): ParseResult {
  const name = frame.event;
  switch (name) {
    case "connected":
      return { ok: true, event: { event: "connected" } };
    case "start":
      return {
        ok: true,
        event: {
          event: "start",
          ...sequenced(frame),
          start: parseStart(frame),
        },
      };
    case "media":
      return parseMedia(frame);
    case "dtmf":
      return parseDtmf(frame);
    case "mark": {
      const mark = nested(frame, "mark");
      const markName = text(mark.name) ?? text(frame.name);
      if (markName === undefined) {
        return failure("missing_field", 'Invalid mark event: no "name"');
      }
      return {
        ok: true,
        event: { event: "mark", ...sequenced(frame), name: markName },
      };
    }
    case "stop": {
      const stop = nested(frame, "stop");
      return {
        ok: true,
        event: {
          event: "stop",
          ...sequenced(frame),
          reason: (text(stop.reason) ?? text(frame.reason) ?? "unspecified")
            .slice(0, PEER_LIMITS.reasonChars),
          callSid: optionalId(
            pick(stop, "call_sid", "callSid") ??
              pick(frame, "call_sid", "callSid"),
          ),
          accountSid: optionalId(pick(stop, "account_sid", "accountSid")),
        },
      };
    }
    case "clear":
      return { ok: true, event: { event: "clear", ...sequenced(frame) } };
    default:
      return failure(
        "unknown_event",
        `Unknown event "${preview(quote(name))}"`,
      );
  }
}

function parseStart(frame: Fields): StartInfo {
  const start = nested(frame, "start");
  const format = isFields(start.media_format)
    ? start.media_format
    : isFields(start.mediaFormat)
    ? start.mediaFormat
    : {};
  const id = (snake: string, camel: string) =>
    boundedPeerId(pick(start, snake, camel) ?? pick(frame, snake, camel) ?? "");
  const number = (key: string) =>
    (text(start[key]) ?? text(frame[key]) ?? "").slice(
      0,
      PEER_LIMITS.numberChars,
    );
  const rate = Number(pick(format, "sample_rate", "sampleRate"));
  return {
    streamSid: id("stream_sid", "streamSid"),
    callSid: id("call_sid", "callSid"),
    accountSid: id("account_sid", "accountSid"),
    from: number("from"),
    to: number("to"),
    customParameters: parameterRecord(
      start.custom_parameters ?? start.customParameters ??
        frame.custom_parameters ??
        frame.customParameters,
    ),
    encoding: text(format.encoding) ?? "audio/x-raw",
    sampleRate: Number.isFinite(rate) && rate > 0 ? rate : undefined,
  };
}

function parseMedia(frame: Fields): ParseResult {
  const media = nested(frame, "media");
  const encoded = media.payload ?? frame.payload;
  if (typeof encoded !== "string") {
    return failure("missing_field", 'Invalid media event: no "payload" string');
  }
  let payload: Uint8Array;
  try {
    // fromBase64 ignores ASCII white space, and accepts missing padding, as encoders differ.
    payload = Uint8Array.fromBase64(encoded);
  } catch {
    return failure(
      "invalid_payload",
      `Invalid base64 payload "${preview(encoded)}"`,
    );
  }
  // Fields written out rather than spread from sequenced(): this runs for
  // every frame of every call, and a spread builds a second object.
  return {
    ok: true,
    event: {
      event: "media",
      sequenceNumber: integer(frame.sequence_number ?? frame.sequenceNumber),
      streamSid: pick(frame, "stream_sid", "streamSid"),
      chunk: integer(media.chunk),
      timestamp: integer(media.timestamp),
      payload,
    },
  };
}

function parseDtmf(frame: Fields): ParseResult {
  const dtmf = nested(frame, "dtmf");
  const digit = text(dtmf.digit) ?? text(frame.digit);
  if (digit === undefined || !DTMF_DIGIT.test(digit)) {
    return failure(
      "invalid_digit",
      `Invalid DTMF digit "${preview(String(digit))}"`,
    );
  }
  return {
    ok: true,
    event: {
      event: "dtmf",
      ...sequenced(frame),
      digit,
      durationMs: integer(dtmf.duration),
    },
  };
}

function sequenced(frame: Fields): Sequenced {
  return {
    sequenceNumber: integer(frame.sequence_number ?? frame.sequenceNumber),
    streamSid: optionalId(pick(frame, "stream_sid", "streamSid")),
  };
}

function optionalId(id: string | undefined): string | undefined {
  return id === undefined ? undefined : boundedPeerId(id);
}

function nested(frame: Fields, key: string): Fields {
  const value = frame[key];
  return isFields(value) ? value : {};
}

function pick(
  fields: Fields,
  snake: string,
  camel: string,
): string | undefined {
  return text(fields[snake]) ?? text(fields[camel]);
}

function text(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return undefined;
}

function integer(value: unknown): number | undefined {
  const number = typeof value === "string" && value !== ""
    ? Number(value)
    : value;
  return typeof number === "number" && Number.isInteger(number)
    ? number
    : undefined;
}

/** The first {@linkcode PEER_LIMITS}`.parameters` text entries of `value`, each bounded. */
function parameterRecord(value: unknown): Record<string, string> {
  if (!isFields(value)) return {};
  const record: Record<string, string> = {};
  let kept = 0;
  for (const key in value) {
    const entryText = text(value[key]);
    if (entryText === undefined) continue;
    const name = key.slice(0, PEER_LIMITS.parameterChars);
    if (!(name in record) && ++kept > PEER_LIMITS.parameters) break;
    record[name] = entryText.slice(0, PEER_LIMITS.parameterChars);
  }
  return record;
}

function isFields(value: unknown): value is Fields {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function failure(code: ProtocolErrorCode, message: string): ParseResult {
  return { ok: false, error: new ProtocolError(code, message) };
}

/**
 * A parsed JSON value as text. Not `String()`: a parsed object may carry its
 * own "toString" key, and calling that throws.
 */
function quote(value: unknown): string {
  return typeof value === "string"
    ? value
    : JSON.stringify(value) ?? "undefined";
}

/** Cuts what we quote from a bad frame, so a 1 MB frame does not become a 1 MB log line. */
function preview(value: string): string {
  return value.length > 80 ? `${value.slice(0, 80)}…` : value;
}

/**
 * Encodes an outbound `media` frame carrying `pcm` for stream `streamSid`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const frame = JSON.parse(encodeMedia("S1", new Uint8Array([1, 0, 2, 0])));
 * assertEquals(frame.event, "media");
 * assertEquals(frame.stream_sid, "S1");
 * assertEquals(frame.media.payload, "AQACAA==");
 * ```
 */
export function encodeMedia(streamSid: string, pcm: Uint8Array): string {
  // Built by hand: this runs for every outbound frame and JSON.stringify of the
  // wrapper object costs more than the concatenation of a pre-quoted id.
  return `{"event":"media","stream_sid":${
    JSON.stringify(streamSid)
  },"media":{"payload":"${pcm.toBase64()}"}}`;
}

/** Encodes an outbound `mark` frame named `name`. */
export function encodeMark(streamSid: string, name: string): string {
  return JSON.stringify({
    event: "mark",
    stream_sid: streamSid,
    mark: { name },
  });
}

/** Encodes an outbound `clear` frame: Exotel drops audio it has not played yet. */
export function encodeClear(streamSid: string): string {
  return JSON.stringify({ event: "clear", stream_sid: streamSid });
}
