/**
 * The WebSocket plumbing every streaming adapter shares (speech-to-text and
 * speech-to-speech): an event queue the caller iterates, a connect timeout,
 * abort through a signal, a keepalive for idle streams, audio held (bounded) until the
 * socket opens, and a close that lets the vendor flush but never waits
 * past a deadline.
 *
 * Vendors differ only in what goes over the wire, which the adapter
 * supplies as hooks: how a text message maps to events, what to send to
 * ask the vendor to finish, and when it has finished.
 *
 * The socket is `npm:ws`'s client, not Deno's: Deno's client leaves
 * Nagle's algorithm on, which holds the tail of each audio frame for up to
 * a round trip and so delays the vendor's end-of-speech; `ws` sets
 * TCP_NODELAY. `bench/websocket_client_bench.ts`, server replying to every
 * 3200-byte frame: `ws` p50 0.31 / p99 0.67 ms, Deno's client p50 21.2 /
 * p99 45.5 ms (the hand-written NODELAY client `ws` replaced: 0.17 / 0.28).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type Cancel, type Clock, systemClock } from "../call/clock.ts";
import { ProviderError } from "./provider_error.ts";
// @ts-types="@types/ws"
import WebSocket from "ws";

const logger = getLogger(["exovoice", "providers", "stt"]);

/** A JSON object as parsed, fields unchecked. */
export type JsonObject = Record<string, unknown>;

/** One WebSocket message for the vendor: text (JSON) or binary. */
export type Frame = string | Uint8Array;

/** Options of a {@linkcode WsSession}. */
export interface WsSessionOptions<E> {
  /** Vendor id for {@linkcode ProviderError.provider} and logs, e.g. `deepgram`. */
  provider: string;
  /** Vendor name for messages, e.g. `Deepgram`. */
  vendor: string;
  /** Where to connect. Must not carry the API key: URLs end up in logs. */
  url: URL;
  /** Handshake headers (the API key goes here). */
  headers?: HeadersInit;
  /** How long the handshake may take. */
  connectTimeoutMs: number;
  /** How long each closing step (vendor flush, close handshake) may take. */
  closeTimeoutMs: number;
  /** Bytes of frames held while connecting; the oldest are dropped past it. */
  maxPendingBytes: number;
  /** Aborts the session (see {@linkcode WsSessionOptions.finishOnAbort}). */
  signal?: AbortSignal;
  /**
   * What an abort of an open session does. Unset: the socket closes at once
   * and the events fail with an `aborted` error. Set (speech-to-text, whose
   * signal is the call ending): the session says its farewell (Deepgram's
   * `CloseStream`, Sarvam's `flush`), keeps reporting what the vendor still
   * sends for up to `waitMs`, then closes the socket; the events end
   * without an error. A session still connecting is cut off either way.
   */
  finishOnAbort?: { waitMs: number };
  /**
   * Time and timers: the connect and close deadlines, the wait after an
   * abort, the keepalive's idle time. The system clock by default.
   */
  clock?: Clock;
  /** Whether binary messages carry JSON text too (Gemini Live sends it so). */
  textInBinaryFrames?: boolean;
  /** Sends `frame()` whenever nothing was sent for `intervalMs`. */
  keepAlive?: { intervalMs: number; frame: () => Frame };
  /**
   * Handles one JSON object the vendor sent as text, calling `emit` for each
   * event it means. Throwing a {@linkcode ProviderError} fails the session.
   * Text that is not JSON fails it too; other JSON values are ignored.
   */
  onMessage: (message: JsonObject, emit: (event: E) => void) => void;
  /** Frames asking the vendor to finish, sent by {@linkcode WsSession.close}. */
  farewell: () => Frame[];
  /**
   * Called after the farewell: resolves once the vendor has sent all it
   * owes, after which the session closes the socket itself. `undefined`
   * means the vendor closes the socket when it is done.
   */
  settled: () => Promise<void> | undefined;
}

/**
 * A single-consumer async queue: items pushed before anyone waits are kept,
 * and a failure is thrown after the items queued before it.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const queue = new EventQueue<number>();
 * queue.push(1); // kept until someone reads
 * const next = queue.next(); // waits for the next item
 * queue.push(2);
 * queue.end();
 * assertEquals(await next, { value: 1, done: false });
 * const rest: number[] = [];
 * for await (const n of queue) rest.push(n);
 * assertEquals(rest, [2]);
 * ```
 */
export class EventQueue<T> implements AsyncIterableIterator<T> {
  #items: T[] = [];
  #waiters: {
    resolve: (result: IteratorResult<T>) => void;
    reject: (error: unknown) => void;
  }[] = [];
  #ended = false;
  #error: { value: unknown } | undefined;

  /** Adds an item; ignored once the queue has ended or failed. */
  push(item: T): void {
    if (this.#ended) return;
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve({ value: item, done: false });
    else this.#items.push(item);
  }

  /** Ends the queue: waiting and later reads see the end after the items left. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const waiter of this.#waiters.splice(0)) {
      waiter.resolve({ value: undefined, done: true });
    }
  }

  /** Ends the queue with `error`, thrown once to the reader after the items left. */
  fail(error: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    const [first, ...rest] = this.#waiters.splice(0);
    if (first) first.reject(error);
    else this.#error = { value: error };
    for (const waiter of rest) waiter.resolve({ value: undefined, done: true });
  }

  /** Resolves with the next item, or the end; rejects with the failure. */
  next(): Promise<IteratorResult<T>> {
    if (this.#items.length > 0) {
      return Promise.resolve({ value: this.#items.shift() as T, done: false });
    }
    if (this.#error) {
      const { value } = this.#error;
      this.#error = undefined;
      return Promise.reject(value);
    }
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
    });
  }

  /** Stops this reader; the queue itself keeps its state. */
  return(): Promise<IteratorResult<T>> {
    return Promise.resolve({ value: undefined, done: true });
  }

  /** The queue is its own iterator. */
  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}

/** Why the socket failed, as far as the client reported it. */
interface SocketFailure {
  /** `refused`: the vendor answered the handshake with an HTTP error. */
  kind: "refused" | "connect" | "protocol" | "close_timeout";
  message: string;
  status?: number;
  body?: string;
  cause?: unknown;
}

/** Largest message accepted from a vendor; larger ones close with 1009. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** Most of a refused handshake's body read for the error message. */
const MAX_REFUSAL_BODY_BYTES = 4096;

/** Close codes that mean the vendor finished normally. */
const NORMAL_CLOSE_CODES = new Set([1000, 1005]);

/** Longest close reason, or vendor error detail, quoted in an error message. */
const MAX_REASON_CHARS = 200;

/**
 * How long past the close timeout the session waits for the socket to
 * report its close after being cut off: a safety net that should never be
 * used, since `terminate()` reports the close at once.
 */
const CLOSE_GRACE_MS = 1000;

/**
 * A vendor WebSocket carrying one transcription stream. Connecting starts
 * in the constructor; frames sent before the socket opens are held.
 * Failures (refused handshake, timeout, abort, vendor error, unexpected
 * close) end {@linkcode WsSession.events} with a {@linkcode ProviderError},
 * but only once the socket is closed, so a caller that sees the error has
 * nothing left to clean up.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * // A vendor on a loopback port: one transcript per audio frame, and it
 * // closes the socket once asked to finish.
 * await using vendor = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   (request) => {
 *     const { socket, response } = Deno.upgradeWebSocket(request);
 *     socket.onmessage = ({ data }) => {
 *       if (typeof data !== "string") {
 *         socket.send(JSON.stringify({ type: "transcript", bytes: data.byteLength }));
 *       } else if (JSON.parse(data).type === "done") {
 *         socket.close(1000);
 *       }
 *     };
 *     return response;
 *   },
 * );
 * const session = new WsSession<string>({
 *   provider: "example",
 *   vendor: "Example",
 *   url: new URL(`ws://127.0.0.1:${vendor.addr.port}/listen`),
 *   connectTimeoutMs: 5000,
 *   closeTimeoutMs: 2000,
 *   maxPendingBytes: 160_000,
 *   onMessage: (message, emit) => emit(`${message.type} of ${message.bytes}`),
 *   farewell: () => ['{"type":"done"}'],
 *   settled: () => undefined,
 * });
 * session.send(new Uint8Array(320)); // held until the socket is open
 * const heard: string[] = [];
 * for await (const event of session.events()) {
 *   heard.push(event);
 *   await session.close(); // sends the farewell; the vendor closes
 * }
 * assertEquals(heard, ["transcript of 320"]);
 * ```
 */
export class WsSession<E> {
  #options: WsSessionOptions<E>;
  #ws: WebSocket | undefined;
  #queue = new EventQueue<E>();
  #opened = false;
  #finished = false;
  #closing = false;
  #closePromise: Promise<void> | undefined;
  #error: ProviderError | undefined;
  /** Why the handshake or connection failed, from the last error event. */
  #lastError: SocketFailure | undefined;
  #pending: Frame[] = [];
  #pendingBytes = 0;
  #droppedBytes = 0;
  #clock: Clock;
  #lastSentAt = 0;
  #timers = new Set<Cancel>();
  #keepAliveTimer: Cancel | undefined;
  #markDone!: () => void;
  /** Resolves once the socket opened or the session finished. */
  #ready: Promise<void>;
  #markReady!: () => void;
  /** Resolves once the session finished: socket closed, queue ended. */
  #done: Promise<void>;

  /** Starts connecting to `options.url`. */
  constructor(options: WsSessionOptions<E>) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#ready = new Promise((resolve) => this.#markReady = resolve);
    this.#done = new Promise((resolve) => this.#markDone = resolve);
    if (options.signal?.aborted) {
      this.#error = this.#abortError();
      this.#finish();
      return;
    }
    options.signal?.addEventListener("abort", this.#onAbort);
    let ws: WebSocket;
    try {
      ws = new WebSocket(options.url, {
        headers: Object.fromEntries(new Headers(options.headers)),
        perMessageDeflate: false,
        maxPayload: MAX_MESSAGE_BYTES,
      });
    } catch (cause) {
      this.#error = new ProviderError(options.provider, {
        kind: "network",
        message: `Could not connect to ${options.vendor} at "${this.#where()}"`,
        cause,
      });
      this.#finish();
      return;
    }
    ws.on("open", () => this.#onOpen());
    ws.on("message", (data, isBinary) => {
      if (!isBinary || options.textInBinaryFrames) this.#onText(String(data));
    });
    ws.on("unexpected-response", (request, response) => {
      this.#onRefused(ws, request, response);
    });
    ws.on("error", (error) => {
      this.#lastError ??= socketFailure(error, this.#opened);
    });
    ws.on("close", (code, reason) => this.#onClose(code, String(reason)));
    this.#ws = ws;
    this.#after(options.connectTimeoutMs, () => {
      if (this.#opened) return;
      this.#terminate(
        new ProviderError(options.provider, {
          kind: "timeout",
          message:
            `${options.vendor} did not accept the connection within ${options.connectTimeoutMs} ms`,
        }),
      );
    });
  }

  /** Events as the vendor reports them; ends on close, throws on failure. */
  events(): AsyncIterable<E> {
    return this.#queue;
  }

  /**
   * Sends `frame` now, or holds it until the socket opens. Never throws;
   * frames sent after {@linkcode WsSession.close} or a failure are dropped.
   */
  send(frame: Frame): void {
    if (this.#closing || this.#finished) return;
    if (this.#opened) {
      this.#sendNow(frame);
      return;
    }
    // The caller may reuse its buffer once this returns.
    const held = typeof frame === "string" ? frame : frame.slice();
    this.#pending.push(held);
    this.#pendingBytes += held.length;
    while (
      this.#pendingBytes > this.#options.maxPendingBytes &&
      this.#pending.length > 1
    ) {
      const dropped = this.#pending.shift() as Frame;
      this.#pendingBytes -= dropped.length;
      this.#droppedBytes += dropped.length;
    }
  }

  /**
   * Asks the vendor to finish (the farewell), waits until it has (bounded
   * by the close timeout), then closes the socket. Never rejects; a failure
   * is reported through {@linkcode WsSession.events}.
   */
  close(): Promise<void> {
    this.#closePromise ??= this.#runClose();
    return this.#closePromise;
  }

  async #runClose(flushWaitMs = this.#options.closeTimeoutMs): Promise<void> {
    this.#closing = true;
    await this.#ready;
    if (this.#finished || this.#error || !this.#ws) {
      // Failing already: the socket is on its way down.
      await this.#done;
      return;
    }
    this.#stopKeepAlive();
    for (const frame of this.#options.farewell()) this.#sendNow(frame);
    const timeout = this.#options.closeTimeoutMs;
    const settled = this.#options.settled();
    await within(
      settled ? Promise.race([settled, this.#done]) : this.#done,
      flushWaitMs,
      this.#clock,
    );
    if (this.#finished) return;
    this.#ws.close(1000);
    if (await within(this.#done, timeout, this.#clock)) return;
    // A vendor that does not answer our close is cut off; its close event
    // follows at once (see #onClose).
    this.#lastError ??= {
      kind: "close_timeout",
      message: `no close frame within ${timeout} ms`,
    };
    this.#ws.terminate();
    if (!await within(this.#done, CLOSE_GRACE_MS, this.#clock)) this.#finish();
  }

  #onOpen(): void {
    if (this.#finished) return;
    this.#opened = true;
    const pending = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    if (this.#droppedBytes > 0) {
      logger.warn(
        "{provider} connected late: dropped {bytes} bytes of audio held while connecting",
        { provider: this.#options.provider, bytes: this.#droppedBytes },
      );
    }
    for (const frame of pending) this.#sendNow(frame);
    this.#lastSentAt = this.#clock.now();
    if (!this.#closing) {
      this.#scheduleKeepAlive(this.#options.keepAlive?.intervalMs);
    }
    this.#markReady();
  }

  /**
   * Reads (a bounded start of) the body of a refused handshake for the
   * error message, then cuts the socket; its close event reports the
   * failure.
   */
  #onRefused(
    ws: WebSocket,
    request: { destroy(): void },
    response: AsyncIterable<Uint8Array> & { statusCode?: number },
  ): void {
    const status = response.statusCode ?? 0;
    const body = readBounded(response, MAX_REFUSAL_BODY_BYTES);
    within(body, this.#options.closeTimeoutMs, this.#clock).then(
      async (complete) => {
        this.#lastError ??= {
          kind: "refused",
          message: `HTTP ${status}`,
          status,
          body: complete ? await body : "",
        };
        request.destroy();
        ws.terminate();
      },
    );
  }

  #onText(text: string): void {
    if (this.#finished) return;
    const { provider, vendor } = this.#options;
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch (cause) {
      this.#terminate(
        new ProviderError(provider, {
          kind: "protocol",
          message: `${vendor} sent a message that is not JSON`,
          cause,
        }),
      );
      return;
    }
    if (!isJsonObject(message)) return;
    try {
      this.#options.onMessage(message, (item) => this.#queue.push(item));
    } catch (cause) {
      this.#terminate(
        cause instanceof ProviderError ? cause : new ProviderError(provider, {
          kind: "protocol",
          message: `Could not handle a message from ${vendor}`,
          cause,
        }),
      );
    }
  }

  #onClose(code: number, reason: string): void {
    if (this.#finished) return;
    if (this.#closing && this.#lastError?.kind === "close_timeout") {
      // As before: a vendor slow to close has still delivered everything.
      logger.warn("{provider} did not answer the close handshake", {
        provider: this.#options.provider,
      });
    } else if (!this.#error) {
      if (!this.#opened) {
        this.#error = this.#handshakeFailure();
      } else if (!this.#closing || !NORMAL_CLOSE_CODES.has(code)) {
        this.#error = this.#unexpectedClose(code, reason);
      }
    }
    this.#finish();
  }

  #unexpectedClose(code: number, closeReason: string): ProviderError {
    const { provider, vendor } = this.#options;
    const lastError = this.#lastError;
    if (lastError?.kind === "protocol") {
      return new ProviderError(provider, {
        kind: "protocol",
        message: `${vendor} broke the WebSocket protocol: ${lastError.message}`,
        cause: lastError,
      });
    }
    if (code === 1006) {
      const detail = lastError ? `: ${lastError.message}` : "";
      return new ProviderError(provider, {
        kind: "network",
        message: `${vendor} connection dropped without a close frame${detail}`,
      });
    }
    const reason = closeReason.slice(0, MAX_REASON_CHARS);
    return new ProviderError(provider, {
      kind: "network",
      message: `${vendor} closed the stream unexpectedly with code ${code}${
        reason ? ` "${reason}"` : ""
      }`,
    });
  }

  #onAbort = (): void => {
    const finish = this.#options.finishOnAbort;
    if (finish && this.#opened && !this.#error) {
      // Already closing: that close is bounded too, let it finish.
      this.#closePromise ??= this.#runClose(finish.waitMs);
      return;
    }
    this.#terminate(this.#abortError());
  };

  #abortError(): ProviderError {
    return new ProviderError(this.#options.provider, {
      kind: "aborted",
      message: `${this.#options.vendor} session was aborted`,
      cause: this.#options.signal?.reason,
    });
  }

  #handshakeFailure(): ProviderError {
    const { provider, vendor, headers } = this.#options;
    const error = this.#lastError;
    if (error?.status !== undefined) {
      const status = error.status;
      const said = vendorDetail(error.body ?? "", secretsIn(headers));
      const hint = status === 401 || status === 403
        ? ": check the API key"
        : "";
      return new ProviderError(provider, {
        kind: "http",
        message: `${vendor} refused the connection with HTTP ${status}${
          said ? ` "${said}"` : ""
        }${hint}`,
        status,
        cause: error,
      });
    }
    return new ProviderError(provider, {
      kind: error?.kind === "protocol" ? "protocol" : "network",
      message: `Could not connect to ${vendor} at "${this.#where()}"${
        error ? `: ${error.message}` : ""
      }`,
      cause: error,
    });
  }

  /** The URL without its query, for messages. */
  #where(): string {
    const { origin, pathname } = this.#options.url;
    return `${origin}${pathname}`;
  }

  /** Fails the session with `error` and closes the socket. */
  #terminate(error: ProviderError): void {
    if (this.#finished) return;
    this.#error ??= error;
    const ws = this.#ws;
    if (!ws) {
      this.#finish();
      return;
    }
    this.#stopKeepAlive();
    if (ws.readyState === WebSocket.OPEN) {
      ws.close(1000);
      this.#after(this.#options.closeTimeoutMs, () => ws.terminate());
    } else {
      ws.terminate();
    }
    this.#after(
      this.#options.closeTimeoutMs + CLOSE_GRACE_MS,
      () => this.#finish(),
    );
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#stopKeepAlive();
    for (const cancel of this.#timers) cancel();
    this.#timers.clear();
    this.#pending = [];
    this.#options.signal?.removeEventListener("abort", this.#onAbort);
    const { provider } = this.#options;
    if (this.#error) {
      logger.warn("{provider} stream failed ({kind}): {message}", {
        provider,
        kind: this.#error.kind,
        status: this.#error.status,
        message: this.#error.message,
      });
      this.#queue.fail(this.#error);
    } else {
      logger.debug("{provider} stream closed", { provider });
      this.#queue.end();
    }
    this.#markReady();
    this.#markDone();
  }

  #sendNow(frame: Frame): void {
    try {
      this.#ws?.send(frame);
      this.#lastSentAt = this.#clock.now();
    } catch {
      // Only a socket that is closing throws here; its close event follows.
    }
  }

  #scheduleKeepAlive(delayMs: number | undefined): void {
    const keepAlive = this.#options.keepAlive;
    if (!keepAlive || delayMs === undefined || keepAlive.intervalMs <= 0) {
      return;
    }
    this.#keepAliveTimer = this.#clock.schedule(() => {
      this.#keepAliveTimer = undefined;
      if (this.#finished || this.#closing) return;
      const idleMs = this.#clock.now() - this.#lastSentAt;
      if (idleMs >= keepAlive.intervalMs) this.#sendNow(keepAlive.frame());
      const sinceSent = this.#clock.now() - this.#lastSentAt;
      this.#scheduleKeepAlive(Math.max(1, keepAlive.intervalMs - sinceSent));
    }, delayMs);
  }

  #stopKeepAlive(): void {
    this.#keepAliveTimer?.();
    this.#keepAliveTimer = undefined;
  }

  #after(ms: number, callback: () => void): void {
    const cancel = this.#clock.schedule(() => {
      this.#timers.delete(cancel);
      callback();
    }, ms);
    this.#timers.add(cancel);
  }
}

/**
 * What a vendor said when refusing a handshake, in one short line: the
 * code and message of a JSON error body (Deepgram's `err_code`/`err_msg`,
 * Sarvam's `error.code`/`error.message`), else the start of the text. Any
 * of `secrets` it contains is masked: a vendor may echo the key it refused.
 */
export function vendorDetail(body: string, secrets: string[]): string {
  let detail = body.replace(/\s+/g, " ").trim();
  try {
    const parsed: unknown = JSON.parse(body);
    if (isJsonObject(parsed)) {
      const error = isJsonObject(parsed.error) ? parsed.error : parsed;
      const parts = [
        error.err_code ?? error.code,
        error.err_msg ?? error.message ??
          (typeof parsed.error === "string" ? parsed.error : undefined),
      ].filter((part) => typeof part === "string" && part !== "");
      if (parts.length > 0) detail = parts.join(": ");
    }
  } catch {
    // Not JSON: the text itself is the detail.
  }
  for (const secret of secrets) detail = detail.replaceAll(secret, "***");
  return detail.slice(0, MAX_REASON_CHARS);
}

/** Header values, and their words, long enough to be credentials. */
function secretsIn(headers: HeadersInit | undefined): string[] {
  const secrets = new Set<string>();
  for (const [, value] of new Headers(headers)) {
    for (const word of [value, ...value.split(/[\s,]+/)]) {
      if (word.length >= 8) secrets.add(word);
    }
  }
  // Longest first, so a whole value is masked before its parts.
  return [...secrets].sort((a, b) => b.length - a.length);
}

/** Returns true when `value` is a JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The vendor endpoint at `path` under `baseUrl`, which must be a `ws:` or
 * `wss:` URL (a path prefix in it is kept, for proxies).
 *
 * @throws {RangeError} for any other URL.
 */
export function endpointUrl(baseUrl: string, path: string): URL {
  let url: URL | undefined;
  try {
    url = new URL(baseUrl);
  } catch {
    // Reported below with the other bad URLs.
  }
  if (!url || (url.protocol !== "ws:" && url.protocol !== "wss:")) {
    throw new RangeError(
      `Invalid baseUrl "${baseUrl}": expected a ws:// or wss:// URL`,
    );
  }
  url.pathname = `${url.pathname.replace(/\/$/, "")}${path}`;
  return url;
}

/**
 * Returns `value` when it is an integer of at least `min`.
 *
 * @throws {RangeError} quoting `name` and `value` otherwise.
 */
export function integerOption(
  name: string,
  value: number,
  min: number,
): number {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(
      `Invalid ${name} "${value}": expected an integer of at least ${min}`,
    );
  }
  return value;
}

/**
 * What an `error` event of the socket means: before the handshake
 * completed, a failure to connect; after, a broken protocol (`ws` names
 * those `WS_ERR_…`) or a network error.
 */
function socketFailure(error: Error, opened: boolean): SocketFailure {
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && code.startsWith("WS_ERR_")) {
    return { kind: "protocol", message: error.message, cause: error };
  }
  return { kind: opened ? "protocol" : "connect", message: error.message };
}

/** The text of `stream` up to `maxBytes`; the rest is not read. */
async function readBounded(
  stream: AsyncIterable<Uint8Array>,
  maxBytes: number,
): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  let bytes = 0;
  for await (const chunk of stream) {
    text += decoder.decode(chunk.subarray(0, maxBytes - bytes), {
      stream: true,
    });
    bytes += chunk.length;
    if (bytes >= maxBytes) break;
  }
  return text + decoder.decode();
}

/**
 * Resolves `true` when `promise` settles within `ms` on `clock`, `false`
 * otherwise.
 */
function within(
  promise: Promise<unknown>,
  ms: number,
  clock: Clock,
): Promise<boolean> {
  let cancel: (() => void) | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    cancel = clock.schedule(() => resolve(false), ms);
  });
  const settled = promise.then(() => true, () => true);
  return Promise.race([settled, timeout]).finally(() => cancel?.());
}
