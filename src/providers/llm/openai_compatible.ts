/**
 * A {@linkcode LanguageModel} for any OpenAI-compatible Chat Completions
 * endpoint: OpenAI, Groq, Azure OpenAI, Ollama, vLLM, OpenRouter and the
 * like. It streams (`stream: true`), speaks text deltas as they arrive and
 * hands back tool calls once their arguments are complete.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { OpenAiCompatibleModel } from "./openai_compatible.ts";
 *
 * // Stands in for https://api.openai.com/v1: streams two text deltas.
 * const deltas = ["Hello", ", how can I help?"];
 * await using endpoint = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   () =>
 *     new Response(
 *       deltas.map((content) =>
 *         `data: ${JSON.stringify({ choices: [{ delta: { content } }] })}\n\n`
 *       ).join("") + "data: [DONE]\n\n",
 *       { headers: { "content-type": "text/event-stream" } },
 *     ),
 * );
 * const model = new OpenAiCompatibleModel({
 *   baseUrl: `http://127.0.0.1:${endpoint.addr.port}/v1`,
 *   apiKey: "sk-example",
 *   model: "gpt-4o-mini",
 *   timeoutMs: 10_000,
 * });
 * const bargeIn = new AbortController(); // abort() stops the stream mid-reply
 * const said: string[] = [];
 * for await (const event of model.complete(
 *   [{ role: "user", content: "Hello" }],
 *   { signal: bargeIn.signal },
 * )) {
 *   if (event.type === "text") said.push(event.text);
 * }
 * assertEquals(said.join(""), "Hello, how can I help?");
 * ```
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type Cancel, type Clock, systemClock } from "../../call/clock.ts";
import { BodyReader } from "../body_reader.ts";
import { ProviderError } from "../provider_error.ts";
import { readSse, SseError } from "../sse.ts";
import type {
  ChatMessage,
  CompletionEvent,
  CompletionOptions,
  LanguageModel,
  ToolCall,
  ToolDefinition,
} from "./language_model.ts";

const logger = getLogger(["exovoice", "providers", "llm", "openai_compatible"]);

/** How to reach an OpenAI-compatible endpoint, and how to sample. */
export interface OpenAiCompatibleOptions {
  /**
   * The API root that `/chat/completions` is appended to, e.g.
   * `https://api.openai.com/v1`, `https://api.groq.com/openai/v1`,
   * `http://localhost:11434/v1` (Ollama). A query is kept, which is how
   * Azure's `?api-version=` is passed:
   * `https://NAME.openai.azure.com/openai/deployments/DEPLOYMENT?api-version=2024-10-21`.
   */
  baseUrl: string;
  /** Sent as `Authorization: Bearer …`; leave out for servers without auth, or use `headers` (Azure's `api-key`). */
  apiKey?: string;
  /** The model (`model` field), e.g. `gpt-4o-mini`. */
  model: string;
  /** Sampling temperature, 0 to 2; the server's default when left out. */
  temperature?: number;
  /** The reply's token limit, sent as `max_tokens` (the field every compatible server reads). */
  maxTokens?: number;
  /** Longest wait, in milliseconds, from sending the request to the first byte of the stream. */
  timeoutMs: number;
  /** Longest gap, in milliseconds, between two pieces of the stream; defaults to `timeoutMs`. */
  idleTimeoutMs?: number;
  /** Extra request headers, e.g. `{ "api-key": key }` for Azure. They win over the defaults. */
  headers?: Record<string, string>;
  /** The `fetch` to use; the global one by default. */
  fetch?: typeof fetch;
  /** The clock the timeouts and the latency logged run on; the system clock by default. */
  clock?: Clock;
  /** The vendor's name for logs, metrics and errors, e.g. `groq`; defaults to `openai_compatible`. */
  name?: string;
}

// Header names whose values are credentials, so never shown in messages.
const SECRET_HEADER = /authorization|key|token|secret|signature/i;
const PREVIEW_LENGTH = 200;

/**
 * A chat model behind an OpenAI-compatible Chat Completions endpoint.
 * Stateless and safe to share between calls; every {@linkcode complete} is
 * one HTTP request.
 *
 * Failures are {@linkcode ProviderError}s: `http` for an error status (with
 * the vendor's message), `timeout` when the first byte or the next piece of
 * the stream is late, `aborted` when `signal` fires (barge-in), `protocol`
 * for a stream that is not the Chat Completions format, `network` when the
 * server cannot be reached or the stream breaks off.
 */
export class OpenAiCompatibleModel implements LanguageModel {
  /** The vendor's name, for logs and metrics. */
  readonly name: string;
  #url: URL;
  #displayUrl: string;
  #model: string;
  #temperature: number | undefined;
  #maxTokens: number | undefined;
  #timeoutMs: number;
  #idleTimeoutMs: number;
  #headers: Headers;
  #fetch: typeof fetch;
  #clock: Clock;
  #secrets: string[];

  /**
   * Creates the model. Makes no request.
   *
   * @throws {TypeError} for a bad base URL, an empty model, or a timeout,
   * temperature or token limit out of range.
   */
  constructor(options: OpenAiCompatibleOptions) {
    this.name = options.name ?? "openai_compatible";
    this.#url = chatCompletionsUrl(options.baseUrl);
    this.#displayUrl = `${this.#url.origin}${this.#url.pathname}`;
    if (options.model.trim() === "") {
      throw new TypeError(
        `Invalid model "${options.model}": must not be empty`,
      );
    }
    this.#model = options.model.trim();
    this.#timeoutMs = checkMilliseconds("timeoutMs", options.timeoutMs);
    this.#idleTimeoutMs = options.idleTimeoutMs === undefined
      ? this.#timeoutMs
      : checkMilliseconds("idleTimeoutMs", options.idleTimeoutMs);
    const temperature = options.temperature;
    if (
      temperature !== undefined &&
      !(Number.isFinite(temperature) && temperature >= 0 && temperature <= 2)
    ) {
      throw new TypeError(
        `Invalid temperature "${temperature}": expected a number from 0 to 2`,
      );
    }
    this.#temperature = temperature;
    const maxTokens = options.maxTokens;
    if (
      maxTokens !== undefined && !(Number.isSafeInteger(maxTokens) &&
        maxTokens > 0)
    ) {
      throw new TypeError(
        `Invalid maxTokens "${maxTokens}": expected a positive integer`,
      );
    }
    this.#maxTokens = maxTokens;
    const apiKey = options.apiKey?.trim() || undefined;
    this.#headers = new Headers({
      "content-type": "application/json",
      "accept": "text/event-stream",
    });
    if (apiKey !== undefined) {
      this.#headers.set("authorization", `Bearer ${apiKey}`);
    }
    const secrets = apiKey === undefined ? [] : [apiKey];
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      this.#headers.set(name, value);
      if (SECRET_HEADER.test(name)) secrets.push(value.trim());
    }
    // Longest first, so a secret that contains another is not half-redacted.
    this.#secrets = secrets.filter((secret) => secret.length >= 4)
      .sort((a, b) => b.length - a.length);
    this.#fetch = options.fetch ?? fetch;
    this.#clock = options.clock ?? systemClock;
  }

  /** The model requested. */
  get model(): string {
    return this.#model;
  }

  /**
   * Streams the reply to `messages`: `text` events as the deltas arrive,
   * then one `tool_call` event per complete tool call (when the model says
   * it is done with them, or at the end of the stream).
   *
   * @throws {ProviderError} on any failure, including `options.signal` firing.
   */
  async *complete(
    messages: ChatMessage[],
    options?: CompletionOptions,
  ): AsyncGenerator<CompletionEvent, void, undefined> {
    const signal = options?.signal;
    if (signal?.aborted) throw this.#abortedError();
    const body = JSON.stringify(this.#requestBody(messages, options?.tools));
    const clock = this.#clock;
    const watchdog = new Watchdog(signal, {
      timeoutMs: this.#timeoutMs,
      clock,
    });
    const started = clock.now();
    try {
      let response: Response;
      try {
        response = await this.#fetch(this.#url, {
          method: "POST",
          headers: this.#headers,
          body,
          signal: watchdog.signal,
        });
      } catch (error) {
        throw this.#failure(error, watchdog);
      }
      if (!response.ok) throw await this.#httpError(response, watchdog);
      const contentType = response.headers.get("content-type") ?? "";
      if (response.body === null || contentType.includes("application/json")) {
        const text = await response.text().catch(() => "");
        throw new ProviderError(this.name, {
          kind: "protocol",
          message:
            `Unexpected answer from "${this.#displayUrl}" with content type "${contentType}": expected a text/event-stream, got "${
              this.#redact(text.slice(0, PREVIEW_LENGTH))
            }"`,
          status: response.status,
        });
      }
      const summary = yield* this.#events(response.body, watchdog);
      logger.debug(
        "Completion from {provider} done: {characters} characters, {toolCalls} tool calls, first text after {firstTextMs} ms, {totalMs} ms in all",
        {
          provider: this.name,
          model: this.#model,
          characters: summary.characters,
          toolCalls: summary.toolCalls,
          firstTextMs: summary.firstText === undefined
            ? undefined
            : Math.round(summary.firstText - started),
          totalMs: Math.round(clock.now() - started),
        },
      );
    } finally {
      watchdog.dispose();
    }
  }

  async *#events(
    body: ReadableStream<Uint8Array>,
    watchdog: Watchdog,
  ): AsyncGenerator<CompletionEvent, StreamSummary, undefined> {
    const summary: StreamSummary = { characters: 0, toolCalls: 0 };
    const calls = new ToolCallAccumulator(this.name);
    let finished = false;
    let done = false;
    try {
      for await (
        const message of readSse(watchdog.watch(body, this.#idleTimeoutMs))
      ) {
        // Events already decoded from the last network chunk must not be
        // spoken after a barge-in.
        if (watchdog.reason !== undefined) throw watchdog.signal.reason;
        if (message.data === "[DONE]") {
          done = true;
          break;
        }
        const choice = this.#choice(message.data);
        if (choice === undefined) continue;
        const { content, toolCalls, finishReason } = choice;
        if (content !== undefined && content !== "") {
          summary.firstText ??= this.#clock.now();
          summary.characters += content.length;
          yield { type: "text", text: content };
        }
        if (toolCalls !== undefined) calls.add(toolCalls);
        if (finishReason !== undefined) {
          finished = true;
          for (const call of calls.drain()) {
            summary.toolCalls += 1;
            yield { type: "tool_call", call };
          }
        }
      }
    } catch (error) {
      throw this.#failure(error, watchdog);
    }
    if (!done && !finished) {
      throw new ProviderError(this.name, {
        kind: "network",
        message:
          `Stream from "${this.#displayUrl}" ended before the completion did: no finish_reason and no [DONE]`,
      });
    }
    for (const call of calls.drain()) {
      summary.toolCalls += 1;
      yield { type: "tool_call", call };
    }
    return summary;
  }

  #choice(data: string): ChunkChoice | undefined {
    let chunk: unknown;
    try {
      chunk = JSON.parse(data);
    } catch (error) {
      throw new ProviderError(this.name, {
        kind: "protocol",
        message: `Invalid JSON in the stream from "${this.#displayUrl}": "${
          this.#redact(data.slice(0, PREVIEW_LENGTH))
        }"`,
        cause: error,
      });
    }
    if (!isRecord(chunk)) throw this.#badChunk(data);
    if (chunk.error !== undefined) {
      throw new ProviderError(this.name, {
        kind: "protocol",
        message: `"${this.#displayUrl}" reported an error mid-stream: ${
          this.#redact(vendorMessage(chunk) ?? data.slice(0, PREVIEW_LENGTH))
        }`,
      });
    }
    // Usage-only chunks and some servers' keep-alive chunks carry no choices.
    if (chunk.choices === undefined || chunk.choices === null) return undefined;
    if (!Array.isArray(chunk.choices)) throw this.#badChunk(data);
    const choice: unknown = chunk.choices.find((item) =>
      isRecord(item) && (item.index === 0 || item.index === undefined)
    );
    if (choice === undefined) return undefined;
    if (!isRecord(choice)) throw this.#badChunk(data);
    const delta = choice.delta ?? {};
    const finishReason = choice.finish_reason ?? undefined;
    if (
      !isRecord(delta) ||
      (finishReason !== undefined && typeof finishReason !== "string")
    ) {
      throw this.#badChunk(data);
    }
    const content = delta.content ?? undefined;
    if (content !== undefined && typeof content !== "string") {
      throw this.#badChunk(data);
    }
    const toolCalls = delta.tool_calls ?? undefined;
    if (toolCalls !== undefined && !Array.isArray(toolCalls)) {
      throw this.#badChunk(data);
    }
    return { content, toolCalls, finishReason };
  }

  #badChunk(data: string): ProviderError {
    return new ProviderError(this.name, {
      kind: "protocol",
      message: `Unexpected chunk in the stream from "${this.#displayUrl}": "${
        this.#redact(data.slice(0, PREVIEW_LENGTH))
      }": expected a chat.completion.chunk`,
    });
  }

  #requestBody(
    messages: ChatMessage[],
    tools: ToolDefinition[] | undefined,
  ): Record<string, unknown> {
    const body: Record<string, unknown> = {
      model: this.#model,
      messages: messages.map(toWireMessage),
      stream: true,
    };
    if (this.#temperature !== undefined) body.temperature = this.#temperature;
    if (this.#maxTokens !== undefined) body.max_tokens = this.#maxTokens;
    if (tools !== undefined && tools.length > 0) {
      body.tools = tools.map((tool) => ({
        type: "function",
        function: {
          name: tool.name,
          description: tool.description,
          parameters: tool.parameters,
        },
      }));
    }
    return body;
  }

  async #httpError(
    response: Response,
    watchdog: Watchdog,
  ): Promise<ProviderError> {
    let text = "";
    try {
      text = await response.text();
    } catch (error) {
      if (watchdog.reason !== undefined) return this.#failure(error, watchdog);
    }
    let detail: string | undefined;
    try {
      detail = vendorMessage(JSON.parse(text));
    } catch {
      // Not JSON (a proxy's HTML page, say): its start is the best detail.
    }
    detail ??= text.trim().slice(0, PREVIEW_LENGTH);
    const reason = detail === "" ? response.statusText : detail;
    return new ProviderError(this.name, {
      kind: "http",
      message:
        `Request to "${this.#displayUrl}" failed with HTTP ${response.status}: ${
          this.#redact(reason)
        }`,
      status: response.status,
    });
  }

  #failure(error: unknown, watchdog: Watchdog): ProviderError {
    if (error instanceof ProviderError) return error;
    if (watchdog.reason === "aborted") return this.#abortedError();
    if (watchdog.reason === "timeout") {
      return new ProviderError(this.name, {
        kind: "timeout",
        message: watchdog.streaming
          ? `Stream from "${this.#displayUrl}" stalled: nothing for ${this.#idleTimeoutMs} ms`
          : `No answer from "${this.#displayUrl}" within ${this.#timeoutMs} ms`,
        cause: error,
      });
    }
    if (error instanceof SseError) {
      return new ProviderError(this.name, {
        kind: "protocol",
        message:
          `Invalid event stream from "${this.#displayUrl}": ${error.message}`,
        cause: error,
      });
    }
    const detail = error instanceof Error ? error.message : String(error);
    return new ProviderError(this.name, {
      kind: "network",
      message: `Request to "${this.#displayUrl}" failed: ${
        this.#redact(detail)
      }`,
      cause: error,
    });
  }

  #abortedError(): ProviderError {
    return new ProviderError(this.name, {
      kind: "aborted",
      message: `Completion from "${this.#displayUrl}" aborted`,
    });
  }

  #redact(text: string): string {
    let redacted = text;
    for (const secret of this.#secrets) {
      redacted = redacted.replaceAll(secret, "[redacted]");
    }
    return redacted;
  }
}

interface StreamSummary {
  characters: number;
  toolCalls: number;
  firstText?: number;
}

interface ChunkChoice {
  content: string | undefined;
  toolCalls: unknown[] | undefined;
  finishReason: string | undefined;
}

/**
 * One request's deadlines and cancellation: aborts the request when the
 * caller's signal fires or a deadline passes, and remembers which it was.
 */
class Watchdog {
  #controller = new AbortController();
  #clock: Clock;
  #cancelTimer: Cancel | undefined;
  #external: AbortSignal | undefined;
  #reason: "aborted" | "timeout" | undefined;
  #streaming = false;
  #onAbort = () => this.#stop("aborted");

  constructor(
    external: AbortSignal | undefined,
    options: { timeoutMs: number; clock: Clock },
  ) {
    this.#clock = options.clock;
    this.#external = external;
    external?.addEventListener("abort", this.#onAbort, { once: true });
    this.#arm(options.timeoutMs);
  }

  /** Aborts the request. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Why the request was stopped, if it was. */
  get reason(): "aborted" | "timeout" | undefined {
    return this.#reason;
  }

  /** Whether the first byte of the body has arrived. */
  get streaming(): boolean {
    return this.#streaming;
  }

  /**
   * Passes `body` through with a deadline of `idleMs` on every read after the
   * first (which the request's own deadline covers). The clock runs only
   * while a read waits on the server: a slow reader is not a stalled server.
   * Cancelling the result cancels `body`, even in the middle of a read.
   */
  watch(
    body: ReadableStream<Uint8Array>,
    idleMs: number,
  ): ReadableStream<Uint8Array> {
    // Compact pieces: a token's few bytes must not each hold a 64 KiB
    // buffer until the next full garbage collection (see `body_reader.ts`).
    const reader = BodyReader.of(body);
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (this.#streaming && this.#reason === undefined) this.#arm(idleMs);
        const piece = await reader.read();
        this.#disarm();
        if (piece === undefined) {
          controller.close();
          return;
        }
        this.#streaming = true;
        controller.enqueue(piece);
      },
      cancel: () => reader.cancel(),
    }, { highWaterMark: 0 });
  }

  dispose(): void {
    this.#disarm();
    this.#external?.removeEventListener("abort", this.#onAbort);
  }

  #arm(ms: number): void {
    this.#cancelTimer?.();
    this.#cancelTimer = this.#clock.schedule(() => this.#stop("timeout"), ms);
  }

  #disarm(): void {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
  }

  #stop(reason: "aborted" | "timeout"): void {
    this.#disarm();
    this.#reason ??= reason;
    this.#controller.abort(
      new DOMException(
        reason === "timeout" ? "Deadline passed" : "Aborted by the caller",
        reason === "timeout" ? "TimeoutError" : "AbortError",
      ),
    );
  }
}

/** Gathers streamed tool call pieces by their `index`. */
class ToolCallAccumulator {
  #provider: string;
  #calls = new Map<number, { id?: string; name?: string; arguments: string }>();

  constructor(provider: string) {
    this.#provider = provider;
  }

  add(deltas: unknown[]): void {
    deltas.forEach((delta, position) => {
      if (!isRecord(delta)) throw this.#invalid(delta);
      const fn = delta.function ?? {};
      if (!isRecord(fn)) throw this.#invalid(delta);
      // Some servers leave `index` out when they send one call per chunk.
      const index = delta.index ?? position;
      const id = delta.id ?? undefined;
      const name = fn.name ?? undefined;
      const piece = fn.arguments ?? undefined;
      if (
        typeof index !== "number" || !Number.isSafeInteger(index) ||
        !isOptionalString(id) || !isOptionalString(name) ||
        !isOptionalString(piece)
      ) {
        throw this.#invalid(delta);
      }
      const call = this.#calls.get(index) ?? { arguments: "" };
      call.id ??= id;
      // The name comes whole in the first piece; servers that repeat it must
      // not get it doubled.
      call.name ??= name;
      call.arguments += piece ?? "";
      this.#calls.set(index, call);
    });
  }

  /** The calls gathered so far, in index order; forgets them. */
  drain(): ToolCall[] {
    const entries = [...this.#calls.entries()].sort(([a], [b]) => a - b);
    this.#calls.clear();
    return entries.map(([index, call]) => {
      if (call.name === undefined || call.name === "") {
        throw new ProviderError(this.#provider, {
          kind: "protocol",
          message: `Tool call at index ${index} with arguments "${
            call.arguments.slice(0, PREVIEW_LENGTH)
          }" has no function name`,
        });
      }
      return {
        // Ids only need to match between the call and its tool message.
        id: call.id ?? `call_${index}`,
        name: call.name,
        // A call without arguments still needs valid JSON for its parser.
        arguments: call.arguments === "" ? "{}" : call.arguments,
      };
    });
  }

  #invalid(delta: unknown): ProviderError {
    return new ProviderError(this.#provider, {
      kind: "protocol",
      message: `Invalid tool call delta "${
        JSON.stringify(delta).slice(0, PREVIEW_LENGTH)
      }": expected {index, id?, function: {name?, arguments?}}`,
    });
  }
}

function toWireMessage(message: ChatMessage): Record<string, unknown> {
  switch (message.role) {
    case "system":
    case "user":
      return { role: message.role, content: message.content };
    case "assistant": {
      const calls = message.toolCalls ?? [];
      if (calls.length === 0) {
        return { role: "assistant", content: message.content };
      }
      return {
        role: "assistant",
        // OpenAI's own shape for a turn that only calls tools.
        content: message.content === "" ? null : message.content,
        tool_calls: calls.map((call) => ({
          id: call.id,
          type: "function",
          function: { name: call.name, arguments: call.arguments },
        })),
      };
    }
    case "tool":
      return {
        role: "tool",
        tool_call_id: message.toolCallId,
        content: message.content,
      };
  }
}

function chatCompletionsUrl(baseUrl: string): URL {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    url = new URL("invalid:");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(
      `Invalid baseUrl "${baseUrl}": expected an http(s) URL like https://api.openai.com/v1`,
    );
  }
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/chat/completions`;
  url.hash = "";
  return url;
}

function checkMilliseconds(field: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new TypeError(
      `Invalid ${field} "${value}": expected a positive number of milliseconds`,
    );
  }
  return value;
}

/** The message of an error body: OpenAI's `{"error": {"message"}}` and the shapes other servers use. */
function vendorMessage(body: unknown): string | undefined {
  if (!isRecord(body)) return undefined;
  const error = body.error;
  if (isRecord(error) && typeof error.message === "string") {
    const code = typeof error.code === "string" ? error.code : undefined;
    const type = typeof error.type === "string" ? error.type : undefined;
    const label = [type, code].filter((part) => part !== undefined).join("/");
    return label === "" ? error.message : `${error.message} (${label})`;
  }
  if (typeof error === "string") return error;
  if (typeof body.message === "string") return body.message;
  if (typeof body.detail === "string") return body.detail;
  return undefined;
}

function isOptionalString(value: unknown): value is string | undefined {
  return value === undefined || typeof value === "string";
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
