/**
 * `POST /api/v1/exotel/status`: Exotel's status callback. Merges the call's
 * status, duration and recording URL into its record, whether the record is
 * written yet or not. Unsigned (Exotel signs nothing), so it stores only
 * bounded, parsed fields. Exotel retries when it sees no 200 within 15 s;
 * merging the same callback again changes nothing.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { HttpError, jsonResponse, readParams } from "../http/json.ts";
import type { CallStore } from "../records/call_store.ts";
import {
  InvalidStatusCallbackError,
  parseStatusCallback,
} from "../records/call_status.ts";

/** Largest callback body read: Exotel's are well under 4 KiB. */
const MAX_BODY_BYTES = 64 * 1024;

const log = getLogger(["exovoice", "routes", "status_callback"]);

/**
 * Reads a callback sent as a form (URL-encoded or multipart) or JSON and
 * merges it. Answers 200 `{"ok": true, "callSid", "status"}`.
 *
 * @throws {HttpError} 400 without a `CallSid`, 413 for a huge body, 503 when
 * KV fails (so that Exotel retries).
 */
export async function handleStatusCallback(
  request: Request,
  store: CallStore,
): Promise<Response> {
  const fields = await readFields(request);
  let update;
  try {
    update = parseStatusCallback(fields);
  } catch (error) {
    if (!(error instanceof InvalidStatusCallbackError)) throw error;
    throw new HttpError(400, "invalid_status_callback", error.message);
  }
  let merged;
  try {
    merged = await store.mergeStatus(update.callSid, update);
  } catch (error) {
    log.error("Status of call {callId} not stored: {error}", {
      callId: update.callSid,
      error,
    });
    throw new HttpError(
      503,
      "store_unavailable",
      "Call status could not be stored: try again",
      { headers: { "retry-after": "5" }, cause: error },
    );
  }
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
    throw new HttpError(
      400,
      "invalid_body",
      "Invalid request body: multipart form does not parse",
    );
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
    new HttpError(
      413,
      "body_too_large",
      `Request body larger than ${MAX_BODY_BYTES} bytes`,
    );
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
