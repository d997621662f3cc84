/**
 * A fake OpenAI-compatible Chat Completions server on 127.0.0.1, for tests
 * and benchmarks. It speaks the real wire format, so the real client code
 * runs against it: `POST /v1/chat/completions` answered with a
 * `text/event-stream` of `chat.completion.chunk` objects (`delta.content`,
 * `delta.tool_calls` pieces, `finish_reason`) and a final `data: [DONE]`,
 * or with OpenAI's `{"error": {...}}` body.
 *
 * Each request takes the next scripted reply (or the default reply): text
 * split into the deltas you give, tool calls with their arguments split as
 * you give them, delays, HTTP errors, a server that never answers, a stream
 * that stalls or breaks off, or raw bytes. Every request is recorded.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { OpenAiCompatibleModel } from "../../src/providers/llm/openai_compatible.ts";
 *
 * await using server = startFakeOpenAiServer({
 *   replies: [textReply(["Hel", "lo!"])],
 * });
 * const model = new OpenAiCompatibleModel({
 *   baseUrl: server.baseUrl,
 *   model: "gpt-4o-mini",
 *   timeoutMs: 5_000,
 * });
 * const events = await Array.fromAsync(
 *   model.complete([{ role: "user", content: "Hi" }]),
 * );
 * assertEquals(events, [
 *   { type: "text", text: "Hel" },
 *   { type: "text", text: "lo!" },
 * ]);
 * assertEquals(server.requests[0].body?.messages, [{ role: "user", content: "Hi" }]);
 * ```
 *
 * @module
 */

/** A tool call the fake model makes. */
export interface FakeToolCall {
  /** The call's id, e.g. `call_abc123`. */
  id: string;
  /** The function name. */
  name: string;
  /** The JSON arguments, in the pieces they are streamed in (joined, they must be the whole text). */
  arguments: string[];
}

/** How a reply's stream ends. */
export type FakeStreamEnd =
  /** `data: [DONE]`, then the response ends (what OpenAI does). */
  | "done"
  /** The response ends cleanly without `[DONE]`. */
  | "close"
  /** The connection breaks off: the client's body read fails. */
  | "disconnect"
  /** Nothing more is sent, and the response stays open until the client leaves or the server closes. */
  | "hang";

/** Options shared by the streamed replies. */
export interface FakeStreamOptions {
  /** Milliseconds between headers and the first event. */
  firstDelayMs?: number;
  /** Milliseconds between events, kept on a schedule: event `n` is due `firstDelayMs + n × delayMs` after the headers. */
  delayMs?: number;
  /** Send an SSE comment (`: keep-alive`) before every event, as some servers do. */
  keepAlive?: boolean;
  /** The line ending; `\n` by default. */
  lineEnding?: "\n" | "\r\n";
  /** How the stream ends; `done` by default. */
  end?: FakeStreamEnd;
}

/** A streamed chat completion. */
export interface FakeStreamReply extends FakeStreamOptions {
  /** Discriminant. */
  kind: "stream";
  /** `delta.content` pieces, in order. */
  text?: string[];
  /** Tool calls, streamed after the text: id and name first, then each argument piece. */
  toolCalls?: FakeToolCall[];
  /** Stream the tool calls' pieces in turn (call 0, call 1, call 0, …) instead of one call after the other. */
  interleave?: boolean;
  /** The last chunk's `finish_reason`: `tool_calls` when there are tool calls, else `stop`; `null` sends no finish chunk. */
  finishReason?: string | null;
}

/** An HTTP error. */
export interface FakeErrorReply {
  /** Discriminant. */
  kind: "error";
  /** The HTTP status, e.g. 401. */
  status: number;
  /** The body: a string is sent as is, anything else as JSON. */
  body: unknown;
}

/** A request that is never answered, until the server closes. */
export interface FakeHangReply {
  /** Discriminant. */
  kind: "hang";
}

/** Bytes exactly as given, for malformed streams. */
export interface FakeRawReply extends FakeStreamOptions {
  /** Discriminant. */
  kind: "raw";
  /** The body's pieces, each sent on its own (after `delayMs`); `lineEnding` and `keepAlive` do not apply. */
  chunks: string[];
  /** The HTTP status; 200 by default. */
  status?: number;
  /** The content type; `text/event-stream` by default. */
  contentType?: string;
}

/** What the fake server answers one request with. */
export type FakeReply =
  | FakeStreamReply
  | FakeErrorReply
  | FakeHangReply
  | FakeRawReply;

/** A reply, or a function choosing one from the request (e.g. from its last message). */
export type FakeReplySource =
  | FakeReply
  | ((request: RecordedRequest) => FakeReply);

/** How the server's side of a request ended. */
export type FakeOutcome =
  /** The whole reply was sent. */
  | "sent"
  /** The client went away before the end (abort, timeout). */
  | "cancelled"
  /** The reply broke off on purpose (`end: "disconnect"`). */
  | "disconnected"
  /** The server closed while the reply was still open (`hang`). */
  | "closed";

/** A chat message in a request, as the tests read it: a role and its text. */
export interface ChatMessage {
  /** `system`, `user`, `assistant` or `tool`. */
  role: string;
  /** Its text. */
  content: string;
}

/** A request the server received. */
export interface RecordedRequest {
  /** E.g. `POST`. */
  method: string;
  /** Path and query, e.g. `/v1/chat/completions`. */
  path: string;
  /** The request headers (`authorization`, `api-key`, …). */
  headers: Headers;
  /** The body as sent. */
  text: string;
  /** The body parsed, when it is a JSON object (`model`, `messages`, `tools`, `stream`, …). */
  body: Record<string, unknown> | undefined;
  /** Settles when the server's side of this request is over. */
  outcome: Promise<FakeOutcome>;
}

/** Options of {@linkcode startFakeOpenAiServer}. */
export interface FakeOpenAiServerOptions {
  /** Replies for the coming requests, in order. */
  replies?: FakeReplySource[];
  /** The reply once the scripted ones are used up; without one such a request gets a 500. */
  defaultReply?: FakeReplySource;
  /** When set, requests without `Authorization: Bearer <apiKey>` get OpenAI's 401. */
  apiKey?: string;
}

/** A text reply streamed as `deltas`. */
export function textReply(
  deltas: string[],
  options?: FakeStreamOptions & { finishReason?: string | null },
): FakeStreamReply {
  return { kind: "stream", ...options, text: deltas };
}

/** A reply that calls `calls` (after `options.text`, if any). */
export function toolCallReply(
  calls: FakeToolCall[],
  options?: FakeStreamOptions & {
    text?: string[];
    interleave?: boolean;
    finishReason?: string | null;
  },
): FakeStreamReply {
  return { kind: "stream", ...options, toolCalls: calls };
}

/**
 * An HTTP error with OpenAI's body:
 * `{"error": {"message", "type", "param": null, "code"}}`.
 */
export function errorReply(
  status: number,
  message: string,
  options?: { type?: string; code?: string | null },
): FakeErrorReply {
  return {
    kind: "error",
    status,
    body: {
      error: {
        message,
        type: options?.type ?? defaultErrorType(status),
        param: null,
        code: options?.code ?? null,
      },
    },
  };
}

/** A request that is never answered (until the server closes), for timeout tests. */
export function hangReply(): FakeHangReply {
  return { kind: "hang" };
}

/** A body sent exactly as `chunks`, for malformed-stream tests. */
export function rawReply(
  chunks: string[],
  options?: Omit<FakeRawReply, "kind" | "chunks">,
): FakeRawReply {
  return { kind: "raw", ...options, chunks };
}

/**
 * Starts a fake server on a free loopback port. Close it with
 * {@linkcode FakeOpenAiServer.close} or `await using`.
 */
export function startFakeOpenAiServer(
  options?: FakeOpenAiServerOptions,
): FakeOpenAiServer {
  return new FakeOpenAiServer(options ?? {});
}

/** The running fake; see {@linkcode startFakeOpenAiServer}. */
export class FakeOpenAiServer implements AsyncDisposable {
  #server: Deno.HttpServer<Deno.NetAddr>;
  #replies: FakeReplySource[];
  #defaultReply: FakeReplySource | undefined;
  #apiKey: string | undefined;
  #requests: RecordedRequest[] = [];
  #closing = new AbortController();
  #closed: Promise<void> | undefined;
  #completionIds = 0;

  /** Use {@linkcode startFakeOpenAiServer}. */
  constructor(options: FakeOpenAiServerOptions) {
    this.#replies = [...(options.replies ?? [])];
    this.#defaultReply = options.defaultReply;
    this.#apiKey = options.apiKey;
    this.#server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen() {},
      onError: (error) =>
        json(500, {
          error: {
            message: `Fake OpenAI server failed: ${String(error)}`,
            type: "server_error",
            param: null,
            code: null,
          },
        }),
    }, (request) => this.#handle(request));
  }

  /** The API root to give a client, e.g. `http://127.0.0.1:41234/v1`. */
  get baseUrl(): string {
    return `http://127.0.0.1:${this.#server.addr.port}/v1`;
  }

  /** The port it listens on. */
  get port(): number {
    return this.#server.addr.port;
  }

  /** Every request received so far, oldest first. */
  get requests(): readonly RecordedRequest[] {
    return this.#requests;
  }

  /** The chat messages of request `index` (oldest first), as sent; empty when it had none. */
  messages(index: number): ChatMessage[] {
    return (this.#requests[index]?.body?.messages ?? []) as ChatMessage[];
  }

  /** How many scripted replies are still unused. */
  get pendingReplies(): number {
    return this.#replies.length;
  }

  /** Adds replies for the coming requests, after those already scripted. */
  enqueue(...replies: FakeReplySource[]): void {
    this.#replies.push(...replies);
  }

  /**
   * Stops the server: hanging requests and open streams end, then the
   * listener and every connection close. Safe to call twice.
   */
  close(): Promise<void> {
    this.#closing.abort();
    this.#closed ??= this.#server.shutdown();
    return this.#closed;
  }

  /** Same as {@linkcode FakeOpenAiServer.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const text = await request.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const outcome = Promise.withResolvers<FakeOutcome>();
    const recorded: RecordedRequest = {
      method: request.method,
      path: `${url.pathname}${url.search}`,
      headers: request.headers,
      text,
      body: isRecord(parsed) ? parsed : undefined,
      outcome: outcome.promise,
    };
    this.#requests.push(recorded);
    const reply = this.#reply(recorded, url);
    if (reply.kind === "hang") {
      await new Promise<void>((resolve) =>
        this.#closing.signal.addEventListener("abort", () => resolve(), {
          once: true,
        })
      );
      outcome.resolve("closed");
      return json(503, { error: { message: "Fake server closed" } });
    }
    if (reply.kind === "error") {
      outcome.resolve("sent");
      return typeof reply.body === "string"
        ? new Response(reply.body, { status: reply.status })
        : json(reply.status, reply.body);
    }
    const pieces = reply.kind === "raw"
      ? reply.chunks
      : this.#events(reply, recorded);
    const encoded = pieces.map((piece) => new TextEncoder().encode(piece));
    const headers = new Headers({
      "content-type": reply.kind === "raw"
        ? reply.contentType ?? "text/event-stream"
        : "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
    });
    const end = reply.end ?? (reply.kind === "raw" ? "close" : "done");
    if (end === "disconnect") {
      // Promising more bytes than are sent makes the client's read fail as
      // on a reset connection, without the runtime logging a body error.
      const length = encoded.reduce((sum, bytes) => sum + bytes.length, 1);
      headers.set("content-length", String(length));
    }
    return new Response(
      this.#stream(encoded, { ...reply, end }, outcome.resolve),
      { status: reply.kind === "raw" ? reply.status ?? 200 : 200, headers },
    );
  }

  #reply(request: RecordedRequest, url: URL): FakeReply {
    if (request.method !== "POST" || url.pathname !== "/v1/chat/completions") {
      return errorReply(
        404,
        `Invalid URL (${request.method} ${url.pathname})`,
      );
    }
    if (this.#apiKey !== undefined) {
      const authorization = request.headers.get("authorization");
      if (authorization !== `Bearer ${this.#apiKey}`) {
        const given = authorization?.replace(/^Bearer\s+/i, "") ?? "";
        return errorReply(
          401,
          given === ""
            ? "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            : `Incorrect API key provided: ${
              maskKey(given)
            }. You can find your API key at https://platform.openai.com/account/api-keys.`,
          { code: given === "" ? null : "invalid_api_key" },
        );
      }
    }
    if (request.body === undefined) {
      return errorReply(
        400,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)",
      );
    }
    const source = this.#replies.shift() ?? this.#defaultReply;
    if (source === undefined) {
      return errorReply(
        500,
        `Fake OpenAI server has no reply scripted for request #${this.#requests.length}`,
        { type: "server_error" },
      );
    }
    return typeof source === "function" ? source(request) : source;
  }

  #events(reply: FakeStreamReply, request: RecordedRequest): string[] {
    this.#completionIds += 1;
    const base = {
      id: `chatcmpl-fake${this.#completionIds}`,
      object: "chat.completion.chunk",
      created: Math.floor(Date.now() / 1000),
      model: typeof request.body?.model === "string"
        ? request.body.model
        : "fake-model",
      system_fingerprint: "fp_fake",
    };
    const chunk = (delta: unknown, finishReason: string | null = null) =>
      JSON.stringify({
        ...base,
        choices: [{
          index: 0,
          delta,
          logprobs: null,
          finish_reason: finishReason,
        }],
      });
    const text = reply.text ?? [];
    const calls = reply.toolCalls ?? [];
    const events = [
      chunk({
        role: "assistant",
        content: text.length > 0 || calls.length === 0 ? "" : null,
        refusal: null,
      }),
      ...text.map((content) => chunk({ content })),
      ...toolCallDeltas(calls, reply.interleave ?? false).map((delta) =>
        chunk({ tool_calls: [delta] })
      ),
    ];
    const finishReason = reply.finishReason === undefined
      ? calls.length > 0 ? "tool_calls" : "stop"
      : reply.finishReason;
    if (finishReason !== null) events.push(chunk({}, finishReason));
    if ((reply.end ?? "done") === "done") events.push("[DONE]");
    const lineEnding = reply.lineEnding ?? "\n";
    const keepAlive = reply.keepAlive
      ? `: keep-alive${lineEnding}${lineEnding}`
      : "";
    return events.map((data) =>
      `${keepAlive}data: ${data}${lineEnding}${lineEnding}`
    );
  }

  #stream(
    pieces: Uint8Array[],
    options: FakeStreamOptions & { end: FakeStreamEnd },
    settle: (outcome: FakeOutcome) => void,
  ): ReadableStream<Uint8Array> {
    const cancelled = new AbortController();
    const stop = AbortSignal.any([cancelled.signal, this.#closing.signal]);
    const closing = this.#closing.signal;
    const run = async (
      controller: ReadableStreamDefaultController<Uint8Array>,
    ) => {
      // Each piece is due on a schedule from the start, so one late timer
      // does not delay every piece after it (the bench subtracts the
      // schedule as the vendor's own time).
      const start = performance.now();
      let dueMs = 0;
      for (const [index, piece] of pieces.entries()) {
        dueMs += (index === 0 ? options.firstDelayMs : options.delayMs) ?? 0;
        if (!await sleep(start + dueMs - performance.now(), stop)) break;
        controller.enqueue(piece);
      }
      if (options.end === "hang" && !stop.aborted) {
        await new Promise<void>((resolve) =>
          stop.addEventListener("abort", () => resolve(), { once: true })
        );
      }
      if (cancelled.signal.aborted) {
        settle("cancelled");
        return;
      }
      controller.close();
      if (closing.aborted) settle("closed");
      else settle(options.end === "disconnect" ? "disconnected" : "sent");
    };
    return new ReadableStream<Uint8Array>({
      start(controller) {
        // Not awaited: `start` must return for the response to begin.
        run(controller).catch(() => settle("cancelled"));
      },
      cancel() {
        cancelled.abort();
      },
    });
  }
}

/** Each tool call as OpenAI streams it: id, type and name first, then the argument pieces. */
function toolCallDeltas(
  calls: FakeToolCall[],
  interleave: boolean,
): Record<string, unknown>[] {
  const perCall = calls.map((call, index) => [
    {
      index,
      id: call.id,
      type: "function",
      function: { name: call.name, arguments: "" },
    },
    ...call.arguments.map((piece) => ({
      index,
      function: { arguments: piece },
    })),
  ]);
  if (!interleave) return perCall.flat();
  const longest = Math.max(0, ...perCall.map((deltas) => deltas.length));
  const deltas: Record<string, unknown>[] = [];
  for (let step = 0; step < longest; step++) {
    for (const callDeltas of perCall) {
      const delta = callDeltas[step];
      if (delta !== undefined) deltas.push(delta);
    }
  }
  return deltas;
}

/** Resolves `true` after `ms`, or `false` as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function defaultErrorType(status: number): string {
  if (status === 401) return "invalid_request_error";
  if (status === 429) return "requests";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

// OpenAI shows the first and last characters of a wrong key only.
function maskKey(key: string): string {
  return key.length <= 8
    ? "*".repeat(key.length)
    : `${key.slice(0, 3)}${"*".repeat(key.length - 7)}${key.slice(-4)}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
