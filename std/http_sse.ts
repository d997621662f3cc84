/**
 * Typed re-export of `@std/http`'s server-sent event parser, from the npm
 * republication `deno-std` (see `assert.ts` for why).
 *
 * @module
 */
import * as untyped from "deno-std/http/server_sent_event_parse_stream.js";

/** One event as std's parser dispatches it: only the fields the event had. */
export interface ServerSentEventMessage {
  /** Comment lines joined with `\n`, unless comments are ignored. */
  comment?: string;
  /** The `event` field. */
  event?: string;
  /** The `data` lines joined with `\n`. */
  data?: string;
  /** The `id` field of this event (not carried over to later ones). */
  id?: string;
  /** The `retry` field, when it was all ASCII digits. */
  retry?: number;
}

/** Options of {@linkcode ServerSentEventParseStream}. */
export interface ServerSentEventParseStreamOptions {
  /** Drop comment lines instead of dispatching them. */
  ignoreComments?: boolean;
}

/**
 * Bytes of a `text/event-stream` in, one message per blank-line-terminated
 * event out. At the end of the stream it also dispatches an event that had
 * no blank line yet.
 */
export const ServerSentEventParseStream: new (
  options?: ServerSentEventParseStreamOptions,
) => TransformStream<Uint8Array, ServerSentEventMessage> =
  untyped.ServerSentEventParseStream;
