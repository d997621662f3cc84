/**
 * Server-sent events (`text/event-stream`), read the way the WHATWG HTML
 * standard's event-stream interpretation does: lines end in CRLF, LF or CR,
 * `:` starts a comment, `data` lines join with `\n`, a blank line dispatches,
 * and an event the stream ends in the middle of is dropped.
 *
 * Streaming vendor APIs (OpenAI-compatible chat, and others) speak it over a
 * plain `fetch` body, so this is the client half only: no reconnection, no
 * `retry`.
 *
 * @example
 * ```ts
 * const response = await fetch(url, { method: "POST", body });
 * for await (const message of readSse(response.body!)) {
 *   if (message.data === "[DONE]") break;
 *   JSON.parse(message.data);
 * }
 * ```
 *
 * @module
 */

/** One dispatched event. */
export interface SseMessage {
  /** The `event` field, when the event had a non-empty one (listeners would see `message` otherwise). */
  event?: string;
  /** The event's `data` lines joined with `\n`. */
  data: string;
  /** The last event id the stream set, when it set a non-empty one. */
  id?: string;
}

/** Options of {@linkcode SseDecoder} and {@linkcode readSse}. */
export interface SseOptions {
  /**
   * The longest line or event data, in characters, held before giving up:
   * a body that is not an event stream must not grow memory without bound.
   * Defaults to {@linkcode DEFAULT_MAX_EVENT_LENGTH}.
   */
  maxEventLength?: number;
}

/** The default of {@linkcode SseOptions.maxEventLength}: 1 Mi characters. */
export const DEFAULT_MAX_EVENT_LENGTH = 1_048_576;

/** A stream that cannot be an event stream: a line or event past the length limit. */
export class SseError extends Error {
  /** Machine-readable reason. */
  readonly code = "event_too_long";

  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "SseError";
  }
}

/**
 * The event-stream parser without I/O: push bytes (or text) as they arrive,
 * get back the events they complete. Keeps the partial line, the partial
 * event and a UTF-8 sequence split between chunks for the next push.
 *
 * @example
 * ```ts
 * const decoder = new SseDecoder();
 * decoder.push("data: hel"); // []
 * decoder.push("lo\n\n"); // [{ data: "hello" }]
 * ```
 */
export class SseDecoder {
  #text = new TextDecoder();
  #maxLength: number;
  #line = "";
  // A chunk that ended in CR may be followed by the LF of the same CRLF.
  #skipLeadingLf = false;
  #data: string[] = [];
  #dataLength = 0;
  #event = "";
  #lastId = "";

  /**
   * Creates a decoder at the start of a stream.
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
    this.#maxLength = maxLength;
  }

  /**
   * Reads the next piece of the stream and returns the events it completes,
   * in order. Bytes are UTF-8 (a leading byte order mark is dropped).
   *
   * @throws {SseError} when a line or an event's data grows past `maxEventLength`.
   */
  push(chunk: Uint8Array | string): SseMessage[] {
    let text = typeof chunk === "string"
      ? chunk
      : this.#text.decode(chunk, { stream: true });
    if (this.#skipLeadingLf && text.length > 0) {
      this.#skipLeadingLf = false;
      if (text.startsWith("\n")) text = text.slice(1);
    }
    const input = this.#line + text;
    const messages: SseMessage[] = [];
    let start = 0;
    for (const match of input.matchAll(/\r\n|\r|\n/g)) {
      const end = match.index;
      this.#field(input.slice(start, end), messages);
      start = end + match[0].length;
      if (match[0] === "\r" && start === input.length) {
        this.#skipLeadingLf = true;
      }
    }
    this.#line = input.slice(start);
    if (this.#line.length > this.#maxLength) {
      throw new SseError(
        `Server-sent event line of ${this.#line.length} characters starting "${
          this.#line.slice(0, 40)
        }" is longer than the limit of ${this.#maxLength}`,
      );
    }
    return messages;
  }

  #field(line: string, messages: SseMessage[]): void {
    if (line === "") {
      this.#dispatch(messages);
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const name = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (name) {
      case "data":
        this.#data.push(value);
        this.#dataLength += value.length + 1;
        if (this.#dataLength > this.#maxLength) {
          throw new SseError(
            `Server-sent event data of ${this.#dataLength} characters is longer than the limit of ${this.#maxLength}`,
          );
        }
        break;
      case "event":
        this.#event = value;
        break;
      case "id":
        // The standard ignores ids with NUL so they cannot truncate headers.
        if (!value.includes("\0")) this.#lastId = value;
        break;
        // `retry` only matters to a reconnecting client; other names are ignored
        // by the standard.
    }
  }

  #dispatch(messages: SseMessage[]): void {
    if (this.#data.length > 0) {
      const message: SseMessage = { data: this.#data.join("\n") };
      if (this.#event !== "") message.event = this.#event;
      if (this.#lastId !== "") message.id = this.#lastId;
      messages.push(message);
    }
    this.#data = [];
    this.#dataLength = 0;
    this.#event = "";
  }
}

/**
 * Reads an event stream, e.g. a `fetch` response body, as its events.
 * Stopping early (`break`, `return`) cancels `source`, which closes the
 * connection of a `fetch` body; an error of `source` is thrown as is.
 *
 * @example
 * ```ts
 * const body = new Response("data: a\n\ndata: b\n\n").body!;
 * for await (const { data } of readSse(body)) {
 *   data; // "a", then "b"
 * }
 * ```
 *
 * @throws {SseError} when a line or an event's data grows past `maxEventLength`.
 */
export async function* readSse(
  source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
  options?: SseOptions,
): AsyncGenerator<SseMessage, void, undefined> {
  const decoder = new SseDecoder(options);
  for await (const chunk of source) {
    yield* decoder.push(chunk);
  }
}
