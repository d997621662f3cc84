/**
 * `POST /api/v1/exotel/status`: Exotel's status callback. Merges the call's
 * status, duration and recording URL into its record, whether the record is
 * written yet or not. Exotel signs nothing, so the URL carries the secret:
 * with `STATUS_CALLBACK_TOKEN` set, a callback must bring it as the last
 * path segment (`/api/v1/exotel/status/<token>`), as `?token=<token>`, or as
 * the password of Basic credentials in the URL
 * (`https://exotel:<token>@host/api/v1/exotel/status`). Callbacks are rate
 * limited per address, and only bounded, parsed fields are stored. Exotel
 * retries when it sees no 200 within 15 s; merging the same callback again
 * changes nothing.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { timingSafeEqual } from "../http/auth.ts";
import { HttpError, jsonResponse, readParams } from "../http/json.ts";
import type { RateLimiter } from "../http/rate_limit.ts";
import {
  type CallStore,
  UnknownCallLimitError,
} from "../records/call_store.ts";
import {
  type ExotelCallStatus,
  InvalidStatusCallbackError,
  parseStatusCallback,
  withPlausibleDate,
} from "../records/call_status.ts";

/** What guards the status callback. */
export interface StatusCallbackGuard {
  /** `STATUS_CALLBACK_TOKEN`: the secret the callback URL carries; none asked when absent. */
  token?: string;
  /** The token the request's path carried (`/api/v1/exotel/status/<token>`). */
  pathToken?: string;
  /** Callbacks per address (`STATUS_CALLBACK_RATE_LIMIT_PER_MIN`). */
  limiter?: RateLimiter;
  /** The client's address, the limiter's key. */
  clientIp?: string;
  /**
   * Epoch ms now, from the server's clock: the rate limit's time, and what
   * a `DateUpdated` is judged plausible against.
   */
  now: number;
}

/** Largest callback body read: Exotel's are well under 4 KiB. */
const MAX_BODY_BYTES = 64 * 1024;

const log = getLogger(["exovoice", "routes", "status_callback"]);

/**
 * Reads a callback sent as a form (URL-encoded or multipart) or JSON and
 * merges it. Answers 200 `{"ok": true, "callSid", "status"}`.
 *
 * @throws {HttpError} 401 without the token when one is set, 429 over the
 * rate limit or while too many unknown calls' statuses are kept, 400
 * without a `CallSid`, 413 for a huge body, 503 when KV fails (so that
 * Exotel retries).
 */
export async function handleStatusCallback(
  request: Request,
  store: CallStore,
  guard: StatusCallbackGuard,
): Promise<Response> {
  checkToken(request, guard);
  checkRate(guard);
  const parsed = parseFields(await readFields(request));
  const update = withPlausibleDate(parsed, guard.now);
  if (update !== parsed) {
    log.warn(
      "Status callback for call {callId} has an implausible DateUpdated, ignored for ordering",
      { callId: update.callSid, dateUpdated: parsed.dateUpdated ?? "" },
    );
  }
  const merged = await storeStatus(store, update);
  log.info("Exotel status {status} ({eventType}) for call {callId}", {
    callId: update.callSid,
    status: update.status ?? "",
    eventType: update.eventType ?? "",
  });
  return jsonResponse({
    ok: true,
    callSid: merged.callSid,
    status: merged.status ?? null,
  });
}

/** Throws a 429 once the sender's address is past its limit. */
function checkRate(guard: StatusCallbackGuard): void {
  const { limiter, now } = guard;
  const clientIp = guard.clientIp ?? "";
  if (!limiter || limiter.hit(clientIp, now)) return;
  throw new HttpError(429, {
    code: "rate_limited",
    message: "Too many status callbacks from this address: slow down",
    headers: { "retry-after": String(limiter.retryAfterS(clientIp, now)) },
  });
}

/** The callback's fields as a status, or a 400 quoting what is wrong. */
function parseFields(fields: Record<string, unknown>): ExotelCallStatus {
  try {
    return parseStatusCallback(fields);
  } catch (error) {
    if (!(error instanceof InvalidStatusCallbackError)) throw error;
    throw new HttpError(400, {
      code: "invalid_status_callback",
      message: error.message,
    });
  }
}

/** Merges `update` into the call's record: 429 past the unknown-call limit, 503 when KV fails. */
async function storeStatus(
  store: CallStore,
  update: ExotelCallStatus,
): Promise<ExotelCallStatus> {
  try {
    return await store.mergeStatus(update.callSid, update);
  } catch (error) {
    if (error instanceof UnknownCallLimitError) {
      throw new HttpError(429, {
        code: "too_many_unknown_calls",
        message: error.message,
        headers: { "retry-after": "60" },
      });
    }
    log.error("Status of call {callId} not stored: {error}", {
      callId: update.callSid,
      error,
    });
    throw new HttpError(503, {
      code: "store_unavailable",
      message: "Call status could not be stored: try again",
      headers: { "retry-after": "5" },
      cause: error,
    });
  }
}

/**
 * True when `guard.token` is unset, or `request` carries it (in its path,
 * `?token=`, or as the password of Basic credentials).
 */
export function hasStatusToken(
  request: Request,
  guard: Pick<StatusCallbackGuard, "token" | "pathToken">,
): boolean {
  const { token } = guard;
  if (token === undefined) return true;
  const url = new URL(request.url);
  const offered = [
    guard.pathToken,
    url.searchParams.get("token") ?? undefined,
    basicPassword(request.headers.get("authorization")),
  ];
  // Every candidate is compared, so timing says nothing about which was offered.
  let accepted = false;
  for (const candidate of offered) {
    if (candidate !== undefined && timingSafeEqual(candidate, token)) {
      accepted = true;
    }
  }
  return accepted;
}

function checkToken(request: Request, guard: StatusCallbackGuard): void {
  if (!hasStatusToken(request, guard)) {
    throw new HttpError(401, {
      code: "unauthorized",
      message:
        "Missing or wrong status callback token: put STATUS_CALLBACK_TOKEN in the callback URL",
      headers: { "www-authenticate": 'Basic realm="exovoice"' },
    });
  }
}

/** The password of `Authorization: Basic …`, any user. */
function basicPassword(header: string | null): string | undefined {
  if (header === null || !/^basic /i.test(header)) return undefined;
  try {
    const decoded = new TextDecoder().decode(
      Uint8Array.fromBase64(header.slice(6).trim()),
    );
    const colon = decoded.indexOf(":");
    return colon === -1 ? undefined : decoded.slice(colon + 1);
  } catch {
    return undefined;
  }
}

async function readFields(
  request: Request,
): Promise<Record<string, unknown>> {
  const type = request.headers.get("content-type") ?? "";
  if (!type.toLowerCase().startsWith("multipart/form-data")) {
    return await readParams(request, MAX_BODY_BYTES);
  }
  const bytes = await readLimited(request);
  let form: FormData;
  try {
    form = await new Response(bytes, { headers: { "content-type": type } })
      .formData();
  } catch {
    throw new HttpError(400, {
      code: "invalid_body",
      message: "Invalid request body: multipart form does not parse",
    });
  }
  const fields: Record<string, unknown> = Object.fromEntries(
    new URL(request.url).searchParams,
  );
  for (const [name, value] of form) {
    if (typeof value === "string") fields[name] = value;
  }
  return fields;
}

async function readLimited(
  request: Request,
): Promise<Uint8Array<ArrayBuffer>> {
  const tooLarge = () =>
    new HttpError(413, {
      code: "body_too_large",
      message: `Request body larger than ${MAX_BODY_BYTES} bytes`,
    });
  if (Number(request.headers.get("content-length")) > MAX_BODY_BYTES) {
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of request.body ?? []) {
    total += chunk.length;
    if (total > MAX_BODY_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}
