/**
 * Server-sent events (`text/event-stream`) from a streaming vendor API
 * (OpenAI-compatible chat, and others), read with std's
 * `ServerSentEventParseStream`: lines end in CRLF, LF or CR, `:` starts a
 * comment, `data` lines join with `\n`, a blank line dispatches.
 *
 * Two things std's parser leaves to its caller are done here, in a byte
 * guard in front of it ({@linkcode EventBoundStream}):
 * - a bound: std holds an unfinished event in memory however long it grows,
 *   so a body that is not an event stream could grow memory without bound;
 * - the end of the stream: std dispatches an event the stream ends in the
 *   middle of, the WHATWG standard drops it (a half-sent JSON chunk is a
 *   cut-off answer, not a message).
 *
 * And two after it: events without `data` lines are not dispatched (the
 * standard's rule; std dispatches them), and `id` is the last one the stream
 * set, as the standard's "last event ID" is.
 *
 * This is the client half only: no reconnection, no `retry`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const body = new Response('data: {"a":1}\n\n: ping\n\ndata: [DONE]\n\n').body!;
 * const data = [];
 * for await (const message of readSse(body)) data.push(message.data);
 * assertEquals(data, ['{"a":1}', "[DONE]"]);
 * ```
 *
 * @module
 */

import { ServerSentEventParseStream } from "../../std/http_sse.ts";

/** One dispatched event. */
export interface SseMessage {
  /** The `event` field, when the event had a non-empty one (listeners would see `message` otherwise). */
  event?: string;
  /** The event's `data` lines joined with `\n`. */
  data: string;
  /** The last event id the stream set, when it set a non-empty one. */
  id?: string;
}

/** Options of {@linkcode readSse} and {@linkcode EventBoundStream}. */
export interface SseOptions {
  /**
   * The most bytes one event (its lines and line ends) may take before its
   * blank line, held before giving up. Defaults to
   * {@linkcode DEFAULT_MAX_EVENT_LENGTH}.
   */
  maxEventLength?: number;
}

/** The default of {@linkcode SseOptions.maxEventLength}: 1 MiB. */
export const DEFAULT_MAX_EVENT_LENGTH = 1_048_576;

/** A stream that cannot be an event stream: an event past the length limit. */
export class SseError extends Error {
  /** Machine-readable reason. */
  readonly code = "event_too_long";

  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "SseError";
  }
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * Passes an event stream's bytes on up to the end of each event (its blank
 * line) and holds the rest, so that the parser behind it never sees more
 * than one unfinished event of at most `maxEventLength` bytes, nor an event
 * the stream ends in the middle of.
 *
 * Nothing is delayed: a parser dispatches only at a blank line, and
 * everything up to the last blank line goes on at once.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const bytes = new TextEncoder().encode("data: a\n\ndata: cut");
 * const passed = await new Response(
 *   ReadableStream.from([bytes]).pipeThrough(new EventBoundStream()),
 * ).text();
 * assertEquals(passed, "data: a\n\n");
 * ```
 */
export class EventBoundStream extends TransformStream<Uint8Array, Uint8Array> {
  /**
   * Creates the guard.
   *
   * @throws {RangeError} for a `maxEventLength` that is not a positive integer.
   */
  constructor(options?: SseOptions) {
    const maxLength = options?.maxEventLength ?? DEFAULT_MAX_EVENT_LENGTH;
    if (!Number.isSafeInteger(maxLength) || maxLength <= 0) {
      throw new RangeError(
        `Invalid maxEventLength "${maxLength}": expected a positive integer`,
      );
    }
    const held: Uint8Array[] = [];
    let heldLength = 0;
    let lineLength = 0;
    let eventHasLines = false;
    let afterCr = false;
    super({
      transform(chunk, controller) {
        let cut = 0;
        for (let i = 0; i < chunk.length; i++) {
          const byte = chunk[i];
          if (byte === LF && afterCr) {
            // The LF of a CRLF: the line already ended at its CR.
            afterCr = false;
            if (cut === i && !eventHasLines) cut = i + 1;
            continue;
          }
          afterCr = byte === CR;
          if (byte !== LF && byte !== CR) {
            lineLength++;
            continue;
          }
          if (lineLength > 0) eventHasLines = true;
          else if (eventHasLines) {
            eventHasLines = false;
            cut = i + 1;
          }
          lineLength = 0;
        }
        if (cut > 0) {
          for (const piece of held) controller.enqueue(piece);
          held.length = 0;
          heldLength = 0;
          controller.enqueue(chunk.subarray(0, cut));
        }
        if (cut < chunk.length) {
          held.push(chunk.subarray(cut));
          heldLength += chunk.length - cut;
          if (heldLength > maxLength) {
            const start = new TextDecoder().decode(held[0].subarray(0, 40));
            throw new SseError(
              `Server-sent event starting "${start}" is longer than the limit of ${maxLength} bytes`,
            );
          }
        }
      },
      flush(controller) {
        // Blank lines and line ends only: nothing of an event is cut off.
        if (!eventHasLines && lineLength === 0) {
          for (const piece of held) controller.enqueue(piece);
        }
      },
    });
  }
}

/**
 * Reads an event stream, e.g. a `fetch` response body, as its events.
 * Stopping early (`break`, `return`) cancels `source`, which closes the
 * connection of a `fetch` body; an error of `source` is thrown as is.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const body = new Response("event: delta\nid: 7\ndata: a\n\ndata: b\n\n").body!;
 * assertEquals(await Array.fromAsync(readSse(body)), [
 *   { event: "delta", id: "7", data: "a" },
 *   { id: "7", data: "b" },
 * ]);
 * ```
 *
 * @throws {SseError} when an event grows past `maxEventLength` bytes.
 */
export async function* readSse(
  source: ReadableStream<Uint8Array>,
  options?: SseOptions,
): AsyncGenerator<SseMessage, void, undefined> {
  const events = source
    .pipeThrough(new EventBoundStream(options))
    .pipeThrough(new ServerSentEventParseStream({ ignoreComments: true }));
  let lastId = "";
  for await (const event of events) {
    if (event.id !== undefined) lastId = event.id;
    if (event.data === undefined) continue;
    const message: SseMessage = { data: event.data };
    if (event.event !== undefined && event.event !== "") {
      message.event = event.event;
    }
    if (lastId !== "") message.id = lastId;
    yield message;
  }
}
