/**
 * `GET /calls` lists call records newest first, a page at a time;
 * `GET /calls/:id` reads one, with its transcript and Exotel's status.
 *
 * @module
 */

import { HttpError, jsonResponse } from "../http/json.ts";
import {
  type CallQuery,
  type CallStore,
  InvalidCursorError,
  MAX_PAGE_SIZE,
} from "../records/call_store.ts";

/**
 * Answers `{"count", "calls": [...], "cursor", "next"}` for
 * `?limit=&cursor=&from=&to=&number=`: `from`/`to` are ISO 8601 dates or
 * epoch milliseconds and bound when calls ended (`from` included, `to` not);
 * `number` matches the caller or the called number on its last ten digits.
 * `cursor` and `next` (this path with the next page's cursor) are null on
 * the last page.
 *
 * @throws {HttpError} 400 naming the bad parameter.
 */
export async function handleListCalls(
  request: Request,
  store: CallStore,
): Promise<Response> {
  const url = new URL(request.url);
  const query = parseCallQuery(url.searchParams);
  let page;
  try {
    page = await store.list(query);
  } catch (error) {
    if (!(error instanceof InvalidCursorError)) throw error;
    throw new HttpError(400, {
      code: "invalid_cursor",
      message: error.message,
    });
  }
  let next: string | null = null;
  if (page.cursor !== undefined) {
    const params = new URLSearchParams(url.searchParams);
    params.set("cursor", page.cursor);
    next = `${url.pathname}?${params}`;
  }
  return jsonResponse({
    count: page.calls.length,
    calls: page.calls,
    cursor: page.cursor ?? null,
    next,
  });
}

/**
 * Answers the call whose session id, or else Exotel CallSid, is `id`.
 *
 * @throws {HttpError} 404 when there is none.
 */
export async function handleGetCall(
  _request: Request,
  id: string,
  store: CallStore,
): Promise<Response> {
  const call = await store.get(id);
  if (call === undefined) {
    throw new HttpError(404, {
      code: "call_not_found",
      message: `No call record "${id}"`,
    });
  }
  return jsonResponse(call);
}

/**
 * Reads `limit`, `cursor`, `from`, `to` and `number` from a query string.
 *
 * @throws {HttpError} 400 naming the bad parameter.
 */
export function parseCallQuery(params: URLSearchParams): CallQuery {
  const query: CallQuery = {};
  const limit = params.get("limit");
  if (limit !== null) {
    const value = Number(limit);
    if (!/^\d+$/.test(limit) || value < 1 || value > MAX_PAGE_SIZE) {
      throw invalid(
        `Invalid limit "${limit}": expected a whole number from 1 to ${MAX_PAGE_SIZE}`,
      );
    }
    query.limit = value;
  }
  const cursor = params.get("cursor");
  if (cursor !== null && cursor !== "") query.cursor = cursor;
  for (const name of ["from", "to"] as const) {
    const text = params.get(name);
    if (text === null || text === "") continue;
    const time = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
    // A Date holds at most ±8.64e15 ms; past that it is Invalid Date.
    const date = new Date(time);
    if (Number.isNaN(date.getTime())) {
      throw invalid(
        `Invalid ${name} "${
          text.slice(0, 64)
        }": expected an ISO 8601 date or epoch milliseconds up to ${MAX_DATE_MS}`,
      );
    }
    query[name] = date;
  }
  if (query.from && query.to && query.from > query.to) {
    throw invalid(
      `Invalid range: from "${params.get("from")}" is later than to "${
        params.get("to")
      }"`,
    );
  }
  const number = params.get("number");
  if (number !== null && number !== "") {
    if (!/^\+?[\d\s()-]{3,20}$/.test(number)) {
      throw invalid(`Invalid number "${number}": expected a phone number`);
    }
    query.number = number;
  }
  return query;
}

/** The latest time a JavaScript Date can hold, in epoch milliseconds. */
const MAX_DATE_MS = 8.64e15;

function invalid(message: string): HttpError {
  return new HttpError(400, { code: "invalid_query", message });
}
