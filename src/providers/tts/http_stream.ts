/**
 * The HTTP exchange every text-to-speech adapter makes: one POST with a JSON
 * body, its answer read under a deadline, and every failure turned into a
 * {@linkcode ProviderError}.
 *
 * Deadline: `timeoutMs` bounds the wait for the response headers and the
 * first body byte together, then each later wait for more bytes, so a vendor
 * that stalls mid-stream fails with kind `"timeout"` too. Waits only run while
 * a read is pending: a slow consumer never trips the deadline.
 *
 * Abort (barge-in): when the caller's signal aborts before the first byte,
 * the call rejects with kind `"aborted"`. Once audio flows, aborting stops the
 * download at once and the audio stream simply ends, without an error: the
 * caller already knows it aborted.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type Cancel, type Clock, systemClock } from "../../call/clock.ts";
import { ProviderError, type ProviderErrorKind } from "../provider_error.ts";
import { BodyReader } from "../body_reader.ts";

const logger = getLogger(["exovoice", "providers", "tts"]);

/** Longest vendor error text quoted in a {@linkcode ProviderError} message. */
const MAX_QUOTED_CHARS = 300;

/** One POST to a vendor. */
export interface VendorRequest {
  /** The full endpoint, query included. */
  url: URL;
  /** Headers besides `content-type`, which is always JSON. */
  headers: Record<string, string>;
  /** The JSON body. */
  body: unknown;
}

/** How to make a {@linkcode VendorRequest}. */
export interface VendorCallOptions {
  /** The vendor's name, e.g. `deepgram`, used in errors and logs. */
  provider: string;
  /** The deadline described in the module doc, in milliseconds. */
  timeoutMs: number;
  /** Text scrubbed from every error message: the API key. */
  secret: string;
  /** Aborts the exchange (barge-in). */
  signal?: AbortSignal;
  /** The fetch to use; the global one by default. */
  fetch?: typeof fetch;
  /** The clock the deadline and the latency logged run on; the system clock by default. */
  clock?: Clock;
}

/**
 * Resolves `path` against `baseUrl`, keeping any path prefix the base has
 * (a proxy mounted under `/tts/`, say).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(
 *   endpoint("https://api.deepgram.com", "v1/speak").href,
 *   "https://api.deepgram.com/v1/speak",
 * );
 * assertEquals(
 *   endpoint("https://proxy.example/tts", "v1/speak").href,
 *   "https://proxy.example/tts/v1/speak",
 * );
 * ```
 */
export function endpoint(baseUrl: string, path: string): URL {
  const base = baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`;
  return new URL(path.replace(/^\/+/, ""), base);
}

/**
 * Sends `request` and resolves once the first byte of a successful response
 * body has arrived, with the body's pieces (raw, non-empty, in order) as they
 * come. An empty 2xx body gives an empty stream.
 *
 * Iterate the stream to its end, break out of it, or abort the signal;
 * otherwise the connection stays open.
 *
 * @throws {ProviderError} `"http"` for a non-2xx answer (with the vendor's
 * message), `"protocol"` for a JSON or text answer where audio was expected,
 * `"timeout"`, `"network"` or `"aborted"`. The stream itself throws
 * `"timeout"` or `"network"` when the download fails midway.
 */
export async function openAudioStream(
  request: VendorRequest,
  options: VendorCallOptions,
): Promise<AsyncGenerator<Uint8Array>> {
  return await new Exchange(options).openStream(request);
}

/**
 * Sends `request` and parses the whole answer as JSON. The deadline covers
 * the whole answer, as such vendors send nothing before synthesis is done.
 *
 * @throws {ProviderError} as {@linkcode openAudioStream} does; `"protocol"`
 * for a body that is not JSON.
 */
export async function fetchJson(
  request: VendorRequest,
  options: VendorCallOptions,
): Promise<unknown> {
  return await new Exchange(options).json(request);
}

/**
 * Finds the human-readable message in a vendor's error body: Deepgram's
 * `err_msg`, ElevenLabs' `detail.message` or `detail[].msg`, Sarvam's
 * `error.message`, or a plain `message`/`error`/`detail` string. Falls back to
 * the start of the body itself.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(
 *   vendorMessage('{"err_code":"INVALID_AUTH","err_msg":"Invalid credentials."}'),
 *   "Invalid credentials.",
 * );
 * assertEquals(vendorMessage('{"error":{"message":"Quota exceeded"}}'), "Quota exceeded");
 * ```
 */
export function vendorMessage(body: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return body.trim().slice(0, MAX_QUOTED_CHARS);
  }
  return findMessage(parsed) ?? body.trim().slice(0, MAX_QUOTED_CHARS);
}

function findMessage(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) {
    const messages = value.map(findMessage).filter((m) => m !== undefined);
    return messages.length > 0 ? messages.join("; ") : undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const record = value as Record<string, unknown>;
  for (const key of ["err_msg", "message", "msg", "detail", "error"]) {
    const found = findMessage(record[key]);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** A vendor exchange: the abort wiring, the deadline and the error mapping. */
class Exchange {
  readonly #options: VendorCallOptions;
  readonly #controller = new AbortController();
  readonly #detach: () => void;
  readonly #clock: Clock;
  #timedOut = false;

  constructor(options: VendorCallOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    const signal = options.signal;
    if (signal === undefined) {
      this.#detach = () => {};
      return;
    }
    const onAbort = () => this.#controller.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    this.#detach = () => signal.removeEventListener("abort", onAbort);
  }

  async openStream(
    request: VendorRequest,
  ): Promise<AsyncGenerator<Uint8Array>> {
    const started = this.#clock.now();
    try {
      this.#throwIfCallerAborted();
      const { reader, first } = await this.#within(this.#firstPiece(request));
      logger.debug("TTS first byte from {provider} after {ms} ms", {
        provider: this.#options.provider,
        ms: Math.round(this.#clock.now() - started),
      });
      return this.#rest(reader, first);
    } catch (error) {
      this.#detach();
      throw this.#failure(error);
    }
  }

  async json(request: VendorRequest): Promise<unknown> {
    try {
      this.#throwIfCallerAborted();
      const text = await this.#within(
        this.#send(request).then((response) => response.text()),
      );
      try {
        return JSON.parse(text);
      } catch (error) {
        throw this.#error("protocol", "answered with a body that is not JSON", {
          cause: error,
        });
      }
    } catch (error) {
      throw this.#failure(error);
    } finally {
      this.#detach();
    }
  }

  async #firstPiece(
    request: VendorRequest,
  ): Promise<
    { reader?: BodyReader; first?: Uint8Array }
  > {
    const response = await this.#send(request);
    const type = response.headers.get("content-type") ?? "";
    if (/json|^text\//i.test(type)) {
      const message = vendorMessage(await response.text());
      throw this.#error(
        "protocol",
        `answered "${type}" instead of audio: "${message}"`,
      );
    }
    if (response.body === null) return {};
    const reader = BodyReader.of(response.body);
    try {
      const first = await reader.read();
      return first === undefined ? {} : { reader, first };
    } catch (error) {
      await reader.cancel();
      throw error;
    }
  }

  /** Fetches `request`, throwing the vendor's message on a non-2xx status. */
  async #send(request: VendorRequest): Promise<Response> {
    const fetchFn = this.#options.fetch ?? fetch;
    const response = await fetchFn(request.url, {
      method: "POST",
      headers: { ...request.headers, "content-type": "application/json" },
      body: JSON.stringify(request.body),
      signal: this.#controller.signal,
    });
    if (response.ok) return response;
    const message = vendorMessage(await response.text());
    throw this.#error(
      "http",
      `failed with HTTP ${response.status}: "${message}"`,
      { status: response.status },
    );
  }

  async *#rest(
    reader: BodyReader | undefined,
    first: Uint8Array | undefined,
  ): AsyncGenerator<Uint8Array> {
    let ended = reader === undefined;
    try {
      if (first !== undefined) yield first;
      while (reader !== undefined && !this.#callerAborted()) {
        let piece: Uint8Array | undefined;
        try {
          piece = await this.#within(reader.read());
        } catch (error) {
          if (this.#callerAborted()) return;
          throw this.#failure(error);
        }
        if (piece === undefined) {
          ended = true;
          return;
        }
        yield piece;
      }
    } finally {
      this.#detach();
      if (!ended) await reader?.cancel();
    }
  }

  /** Awaits `work`, aborting the exchange when it takes longer than the deadline. */
  async #within<T>(work: Promise<T>): Promise<T> {
    const signal = this.#controller.signal;
    let cancelTimer: Cancel | undefined;
    let onAbort = () => {};
    // Racing, not just aborting, so an injected fetch that ignores its
    // signal still cannot hold the caller past the deadline or a barge-in.
    const stopped = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      cancelTimer = this.#clock.schedule(() => {
        this.#timedOut = true;
        this.#controller.abort();
      }, this.#options.timeoutMs);
    });
    work.catch(() => {});
    try {
      return await Promise.race([work, stopped]);
    } finally {
      cancelTimer?.();
      signal.removeEventListener("abort", onAbort);
    }
  }

  #callerAborted(): boolean {
    return this.#options.signal?.aborted === true;
  }

  #throwIfCallerAborted(): void {
    if (this.#callerAborted()) throw this.#error("aborted", "was aborted");
  }

  #failure(error: unknown): ProviderError {
    if (error instanceof ProviderError) return error;
    if (this.#timedOut) {
      return this.#error(
        "timeout",
        `timed out after ${this.#options.timeoutMs} ms`,
        { cause: error },
      );
    }
    if (this.#callerAborted()) {
      return this.#error("aborted", "was aborted", { cause: error });
    }
    const reason = error instanceof Error ? error.message : String(error);
    return this.#error("network", `failed: "${reason}"`, { cause: error });
  }

  #error(
    kind: ProviderErrorKind,
    what: string,
    options?: { status?: number; cause?: unknown },
  ): ProviderError {
    const { provider, secret } = this.#options;
    let message = `Text-to-speech request to ${provider} ${what}`;
    if (secret !== "") message = message.replaceAll(secret, "[redacted]");
    return new ProviderError(provider, { kind, message, ...options });
  }
}
