/**
 * Exotel's status callbacks: reading one from its form or JSON fields, and
 * merging it with what earlier callbacks said. Pure.
 *
 * Exotel retries a callback it thinks failed and may deliver `answered` after
 * `terminal`, so merging is idempotent, a `terminal` callback outranks any
 * other, and among equals the newest `DateUpdated` wins. A `DateUpdated`
 * far from when the callback arrived (a forged `9999-…`) is dropped as the
 * callback is read ({@linkcode withPlausibleDate}): such a callback never
 * wins over one with a plausible date, it only fills fields nothing else
 * gave.
 *
 * @module
 */

/** One leg of a call, as Exotel reports it. */
export interface ExotelCallLeg {
  /** Seconds this leg was connected. */
  onCallDuration?: number;
  /** The leg's status, e.g. `completed`. */
  status?: string;
  /** `HUMAN`, `MACHINE` or `NA`. */
  answeredBy?: string;
}

/** How the Voicebot applet's stream ended, as a Passthru placed after it hears. */
export interface ExotelStreamResult {
  /** `Stream[Status]`, e.g. `completed`. */
  status?: string;
  /** `Stream[Duration]`: seconds the stream ran. */
  durationS?: number;
  /** `Stream[RecordingUrl]`: Exotel's recording of the stream. */
  recordingUrl?: string;
  /** `Stream[DisconnectedBy]`: `bot` or `user` (others kept as sent). */
  disconnectedBy?: string;
}

/** What Exotel's status callbacks told us about a call, merged. */
export interface ExotelCallStatus {
  /** Exotel's CallSid. */
  callSid: string;
  /** `completed`, `failed`, `busy`, `no-answer`, `in-progress`, …. */
  status?: string;
  /** The event of the newest callback: `terminal`, `answered`, …. */
  eventType?: string;
  /** Every event type seen, sorted. */
  events: string[];
  /** When Exotel last updated the call (`YYYY-MM-DD HH:mm:ss`, as sent). */
  dateUpdated?: string;
  /** When the call was requested. */
  dateCreated?: string;
  /** When the call was placed to the operator. */
  startTime?: string;
  /** When the call ended. */
  endTime?: string;
  /** Exotel's own recording of the call. */
  recordingUrl?: string;
  /** Seconds both parties were connected. */
  conversationDuration?: number;
  /** `inbound`, `outbound-dial` or `outbound-api`. */
  direction?: string;
  /** The number dialled first. */
  from?: string;
  /** The number connected next. */
  to?: string;
  /** The ExoPhone's id. */
  phoneNumberSid?: string;
  /** `CustomField` of the API request that placed the call. */
  customField?: string;
  /** Per-leg details. */
  legs?: ExotelCallLeg[];
  /** How the stream ended, from the Passthru after the Voicebot applet. */
  stream?: ExotelStreamResult;
}

/** A status callback that cannot be used. */
export class InvalidStatusCallbackError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "InvalidStatusCallbackError";
  }
}

const MAX_TEXT = 256;
const MAX_URL = 2048;
const MAX_LEGS = 10;
/** Distinct event types kept per call. */
const MAX_EVENTS = 16;

/**
 * A callback's fields by name, as a form or a JSON body gives them: values
 * are strings from a form, any JSON value from a body.
 */
export type CallbackFields = Record<string, unknown>;

/**
 * Reads a status callback from its fields, as a form or JSON body gave them.
 * Field names are matched ignoring case and underscores (`CallSid`,
 * `callSid`, `call_sid`); `Legs` may be a JSON array, a JSON string, or form
 * fields `Legs[0][Status]`.
 *
 * @throws {InvalidStatusCallbackError} when there is no `CallSid`.
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const status = parseStatusCallback({
 *   call_sid: "CA1", // any casing, with or without underscores
 *   Status: "completed",
 *   ConversationDuration: "41",
 * });
 * assertEquals(status.callSid, "CA1");
 * assertEquals(status.conversationDuration, 41);
 * ```
 */
export function parseStatusCallback(
  fields: CallbackFields,
): ExotelCallStatus {
  const byName = new Map<string, unknown>();
  const legFields: CallbackFields[] = [];
  for (const [name, value] of Object.entries(fields)) {
    const leg = /^legs\[(\d+)\]\[([^\]]+)\]$/i.exec(name);
    if (leg) {
      const index = Number(leg[1]);
      if (index < MAX_LEGS) (legFields[index] ??= {})[leg[2]] = value;
    } else {
      byName.set(normalize(name), value);
    }
  }
  const read = (name: string, max = MAX_TEXT) =>
    text(byName.get(normalize(name)), max);
  const callSid = read("CallSid");
  if (callSid === undefined) {
    throw new InvalidStatusCallbackError(
      "Invalid status callback: CallSid is missing",
    );
  }
  const eventType = read("EventType")?.toLowerCase();
  const status: ExotelCallStatus = {
    callSid,
    status: read("Status")?.toLowerCase(),
    eventType,
    events: eventType === undefined ? [] : [eventType],
    dateUpdated: read("DateUpdated"),
    dateCreated: read("DateCreated"),
    startTime: read("StartTime"),
    endTime: read("EndTime"),
    recordingUrl: read("RecordingUrl", MAX_URL),
    conversationDuration: seconds(
      byName.get(normalize("ConversationDuration")),
    ),
    direction: read("Direction"),
    from: read("From"),
    to: read("To"),
    phoneNumberSid: read("PhoneNumberSid"),
    customField: read("CustomField"),
    legs: legs(byName.get("legs"), legFields),
  };
  return withoutUndefined(status);
}

/**
 * Merges callback `update` into what was known. Fields the newer callback
 * (by `DateUpdated`; on a tie, `update`) carries win; fields it lacks are
 * kept. Merging the same callback twice changes nothing.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const answered = { callSid: "CA1", status: "in-progress", events: ["answered"], dateUpdated: "2025-01-01 10:00:05" };
 * const terminal = { callSid: "CA1", status: "completed", events: ["terminal"], dateUpdated: "2025-01-01 10:01:00" };
 * // The older callback arriving late does not undo the newer one.
 * assertEquals(mergeCallStatus(terminal, answered).status, "completed");
 * ```
 */
export function mergeCallStatus(
  previous: ExotelCallStatus | undefined,
  update: ExotelCallStatus,
): ExotelCallStatus {
  if (previous === undefined) return update;
  const updateIsNewer = rank(update) >= rank(previous);
  const [older, newer] = updateIsNewer
    ? [previous, update]
    : [update, previous];
  const merged: ExotelCallStatus = { ...older };
  for (const [key, value] of Object.entries(newer)) {
    if (value !== undefined) Object.assign(merged, { [key]: value });
  }
  // Exotel has a handful of event types; forged ones must not grow the
  // value past KV's limit and make the genuine callbacks unstorable.
  merged.events = [...new Set([...previous.events, ...update.events])]
    .slice(0, MAX_EVENTS).sort();
  return merged;
}

/** How callbacks order: `terminal` first, then by `DateUpdated`, whose format sorts as text. */
function rank(status: ExotelCallStatus): string {
  const terminal = status.eventType === "terminal" ? "1" : "0";
  return `${terminal} ${status.dateUpdated ?? ""}`;
}

/** How far `DateUpdated` may be from when its callback arrived: a day covers every time zone and Exotel's retries. */
export const MAX_DATE_SKEW_MS = 86_400_000;

/**
 * Drops `dateUpdated` when it is not a date within
 * {@linkcode MAX_DATE_SKEW_MS} of `receivedAt` (epoch ms): Exotel sends it
 * as `YYYY-MM-DD HH:mm:ss` in the account's time zone, which a day of
 * slack covers, so only a forged or broken one is dropped. Returns
 * `status` itself when the date is plausible or absent.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const receivedAt = Date.parse("2025-01-01T10:00:00Z");
 * const forged = { callSid: "CA1", events: [], dateUpdated: "9999-12-31 23:59:59" };
 * assertEquals(withPlausibleDate(forged, receivedAt).dateUpdated, undefined);
 * const honest = { callSid: "CA1", events: [], dateUpdated: "2025-01-01 15:29:58" };
 * assertEquals(withPlausibleDate(honest, receivedAt), honest);
 * ```
 */
export function withPlausibleDate(
  status: ExotelCallStatus,
  receivedAt: number,
): ExotelCallStatus {
  if (status.dateUpdated === undefined) return status;
  const match = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})/.exec(
    status.dateUpdated,
  );
  const at = match
    ? Date.UTC(
      Number(match[1]),
      Number(match[2]) - 1,
      Number(match[3]),
      Number(match[4]),
      Number(match[5]),
      Number(match[6]),
    )
    : NaN;
  if (Math.abs(at - receivedAt) <= MAX_DATE_SKEW_MS) return status;
  const { dateUpdated: _, ...rest } = status;
  return rest;
}

/**
 * Reads the `Stream[…]` fields Exotel gives a Passthru applet placed after
 * the Voicebot applet; undefined when there are none (or no `CallSid`).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const update = parseStreamResult({
 *   CallSid: "CA1",
 *   "Stream[Status]": "completed",
 *   "Stream[Duration]": "42",
 *   "Stream[DisconnectedBy]": "user",
 * });
 * assertEquals(update?.stream, {
 *   status: "completed",
 *   durationS: 42,
 *   disconnectedBy: "user",
 * });
 * ```
 */
export function parseStreamResult(
  fields: CallbackFields,
): ExotelCallStatus | undefined {
  const stream: CallbackFields = {};
  let callSid: string | undefined;
  for (const [name, value] of Object.entries(fields)) {
    const field = /^stream\[([a-z]+)\]$/i.exec(name);
    if (field) stream[field[1].toLowerCase()] = value;
    else if (normalize(name) === "callsid") callSid = text(value, MAX_TEXT);
  }
  if (callSid === undefined || Object.keys(stream).length === 0) {
    return undefined;
  }
  const result = withoutUndefined<ExotelStreamResult>({
    status: text(stream.status, MAX_TEXT)?.toLowerCase(),
    durationS: seconds(stream.duration),
    recordingUrl: text(stream.recordingurl, MAX_URL),
    disconnectedBy: text(stream.disconnectedby, MAX_TEXT)?.toLowerCase(),
  });
  if (Object.keys(result).length === 0) return undefined;
  return { callSid, events: [], stream: result };
}

function normalize(name: string): string {
  return name.replace(/_/g, "").toLowerCase();
}

function text(value: unknown, max: number): string | undefined {
  if (typeof value === "number" && Number.isFinite(value)) {
    value = String(value);
  }
  if (typeof value !== "string") return undefined;
  const trimmed = value.trim();
  return trimmed === "" ? undefined : trimmed.slice(0, max);
}

function seconds(value: unknown): number | undefined {
  const number = typeof value === "string" && value.trim() !== ""
    ? Number(value)
    : value;
  return typeof number === "number" && Number.isFinite(number) && number >= 0
    ? Math.round(number)
    : undefined;
}

function legs(
  json: unknown,
  formLegs: CallbackFields[],
): ExotelCallLeg[] | undefined {
  let raw: unknown[] = formLegs.filter((leg) => leg !== undefined);
  if (typeof json === "string") {
    try {
      json = JSON.parse(json);
    } catch {
      json = undefined;
    }
  }
  if (Array.isArray(json)) raw = json;
  const parsed = raw.slice(0, MAX_LEGS).flatMap((leg) => {
    if (typeof leg !== "object" || leg === null) return [];
    const fields = new Map(
      Object.entries(leg).map(([name, value]) => [normalize(name), value]),
    );
    return [withoutUndefined({
      onCallDuration: seconds(fields.get("oncallduration")),
      status: text(fields.get("status"), MAX_TEXT)?.toLowerCase(),
      answeredBy: text(fields.get("answeredby"), MAX_TEXT),
    })];
  });
  return parsed.length === 0 ? undefined : parsed;
}

/** Drops `undefined` fields, which Deno KV would store and JSON would drop. */
function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(
    Object.entries(value).filter(([, entry]) => entry !== undefined),
  ) as T;
}
