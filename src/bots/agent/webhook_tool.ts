/**
 * Webhook tools: a tool call becomes an HTTP request to a URL fixed in the
 * agent file (the model chooses the arguments, never the host). `POST`
 * sends `{"tool", "arguments", "call"}` as JSON, `GET` the arguments as
 * query parameters. The answer, JSON or text and bounded in size, is the
 * tool's result; a non-2xx status, a timeout, an oversized or unreadable
 * answer reaches the model as `{"error", "body"}`.
 *
 * @module
 */

import type { Clock } from "../../call/clock.ts";
import type { JsonSchema } from "./json_schema.ts";
import {
  type RunnableTool,
  type ToolExecution,
  toolFailure,
  type ToolRunContext,
} from "./tool_runner.ts";

/** Default longest wait for a webhook's whole answer. */
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 5000;

/** Default cap on a webhook's answer: 16 KB. */
export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024;

/** How much of a failed answer the model sees. */
export const FAILURE_BODY_BYTES = 1024;

/** Where and how a webhook tool calls. */
export interface WebhookSettings {
  /** `http(s)://` URL, with `${VAR}`s already expanded. */
  url: string;
  /** `POST` (JSON body) or `GET` (query parameters). */
  method: "GET" | "POST";
  /** Extra request headers, e.g. `Authorization`. */
  headers: Record<string, string>;
  /** Longest wait for the whole answer. */
  timeoutMs: number;
  /** Answers longer than this fail as too large. */
  maxResponseBytes: number;
}

/** A webhook tool as the agent file declares it. */
export interface WebhookToolConfig {
  /** The name the model calls it by. */
  name: string;
  /** What it does, for the model. */
  description: string;
  /** JSON Schema of its arguments. */
  parameters: JsonSchema;
  /** Spoken if still running after ~700 ms. */
  say?: string;
  /** Argument names masked in the call record. */
  redact?: string[];
  /** The request. */
  webhook: WebhookSettings;
}

/**
 * A {@linkcode RunnableTool} that calls `config.webhook`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { ToolRunner } from "./tool_runner.ts";
 *
 * // The clinic's booking API, on a loopback port for the example.
 * await using clinic = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   async (request) => {
 *     const body = await request.json();
 *     return Response.json({ booked: body.arguments.date, by: body.tool });
 *   },
 * );
 * const book = webhookTool({
 *   name: "book_appointment",
 *   description: "Book a slot for the caller.",
 *   parameters: { type: "object", properties: { date: { type: "string" } } },
 *   webhook: {
 *     url: `http://127.0.0.1:${clinic.addr.port}/api/book`,
 *     method: "POST",
 *     headers: {},
 *     timeoutMs: 4000,
 *     maxResponseBytes: 16_384,
 *   },
 * });
 * const runner = new ToolRunner([book]);
 * const call = { callId: "CA1", streamSid: "S1", from: "", to: "", customParameters: {} };
 * const [result] = await runner.run(
 *   [{ id: "t1", name: "book_appointment", arguments: '{"date":"2026-12-04"}' }],
 *   call,
 * );
 * assertEquals(JSON.parse(result.content), {
 *   booked: "2026-12-04",
 *   by: "book_appointment",
 * });
 * ```
 */
export function webhookTool(config: WebhookToolConfig): RunnableTool {
  return {
    definition: {
      name: config.name,
      description: config.description,
      parameters: { ...config.parameters },
    },
    say: config.say,
    redact: config.redact,
    execute: (args, call, clock) => callWebhook(config, { args, call, clock }),
  };
}

interface WebhookCall {
  args: Record<string, unknown>;
  call: ToolRunContext;
  clock: Pick<Clock, "now" | "schedule">;
}

async function callWebhook(
  config: WebhookToolConfig,
  { args, call, clock }: WebhookCall,
): Promise<ToolExecution> {
  const { webhook } = config;
  const abort = new AbortController();
  let timedOut = false;
  const cancelTimer = clock.schedule(() => {
    timedOut = true;
    abort.abort();
  }, webhook.timeoutMs);
  const onCallEnd = () => abort.abort();
  call.signal.addEventListener("abort", onCallEnd, { once: true });
  const failed = (error: unknown): ToolExecution =>
    failure(error, { timedOut, callEnded: call.signal.aborted, webhook });
  try {
    let response: Response;
    try {
      response = await fetch(requestUrl(config, args), {
        method: webhook.method,
        headers: requestHeaders(webhook),
        body: webhook.method === "POST"
          ? requestBody(config, { args, call })
          : undefined,
        signal: abort.signal,
      });
    } catch (error) {
      return failed(error);
    }
    let body: CappedBody;
    try {
      body = await readCapped(response, webhook.maxResponseBytes);
    } catch (error) {
      return failed(error);
    }
    return execution(response, { body, webhook });
  } finally {
    cancelTimer();
    call.signal.removeEventListener("abort", onCallEnd);
  }
}

/** The JSON a POST webhook receives: the tool, its arguments and the call. */
function requestBody(
  config: WebhookToolConfig,
  { args, call }: Pick<WebhookCall, "args" | "call">,
): string {
  return JSON.stringify({
    tool: config.name,
    arguments: args,
    call: {
      callId: call.callId,
      streamSid: call.streamSid,
      from: call.from,
      to: call.to,
      customParameters: call.customParameters,
    },
  });
}

/** Why a request got no answer: its timeout, the call ending, or the error. */
function failure(
  error: unknown,
  why: {
    timedOut: boolean;
    callEnded: boolean;
    webhook: WebhookToolConfig["webhook"];
  },
): ToolExecution {
  if (why.timedOut) {
    return {
      outcome: "timeout",
      content: toolFailure(`timeout after ${why.webhook.timeoutMs} ms`),
    };
  }
  if (why.callEnded) {
    return { outcome: "aborted", content: toolFailure("the call ended") };
  }
  const reason = error instanceof Error ? error.message : String(error);
  return {
    outcome: "error",
    content: toolFailure(`request failed: ${reason}`),
  };
}

/** What the model is told of an answer: its body, or why it is unusable. */
function execution(
  response: Response,
  { body, webhook }: {
    body: CappedBody;
    webhook: WebhookToolConfig["webhook"];
  },
): ToolExecution {
  if (!response.ok) {
    return {
      outcome: "http_error",
      content: toolFailure(
        `HTTP ${response.status}`,
        firstBytes(body.bytes, FAILURE_BODY_BYTES),
      ),
    };
  }
  if (body.truncated) {
    return {
      outcome: "too_large",
      content: toolFailure(
        `answer larger than ${webhook.maxResponseBytes} bytes`,
        firstBytes(body.bytes, FAILURE_BODY_BYTES),
      ),
    };
  }
  const text = new TextDecoder().decode(body.bytes).trim();
  return {
    outcome: "ok",
    content: text === ""
      ? JSON.stringify({ ok: true, status: response.status })
      : text,
  };
}

function requestUrl(
  config: WebhookToolConfig,
  args: Record<string, unknown>,
): URL {
  const url = new URL(config.webhook.url);
  if (config.webhook.method === "GET") {
    for (const [key, value] of Object.entries(args)) {
      if (value === undefined || value === null) continue;
      url.searchParams.set(
        key,
        typeof value === "object" ? JSON.stringify(value) : String(value),
      );
    }
  }
  return url;
}

function requestHeaders(webhook: WebhookSettings): Headers {
  const headers = new Headers({ accept: "application/json, text/plain" });
  if (webhook.method === "POST") {
    headers.set("content-type", "application/json");
  }
  for (const [name, value] of Object.entries(webhook.headers)) {
    headers.set(name, value);
  }
  return headers;
}

interface CappedBody {
  bytes: Uint8Array;
  /** The answer went on past the cap; the rest was not read. */
  truncated: boolean;
}

/** Reads at most `max` bytes of the body, cancelling the rest. */
async function readCapped(
  response: Response,
  max: number,
): Promise<CappedBody> {
  if (response.body === null) {
    return { bytes: new Uint8Array(), truncated: false };
  }
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
      if (size > max) {
        await reader.cancel();
        return { bytes: join(chunks, max), truncated: true };
      }
    }
  } finally {
    reader.releaseLock();
  }
  return { bytes: join(chunks, size), truncated: false };
}

function join(chunks: Uint8Array[], limit: number): Uint8Array {
  const out = new Uint8Array(Math.min(
    limit,
    chunks.reduce((sum, chunk) => sum + chunk.length, 0),
  ));
  let at = 0;
  for (const chunk of chunks) {
    if (at >= out.length) break;
    const piece = chunk.subarray(0, out.length - at);
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}

function firstBytes(bytes: Uint8Array, limit: number): string {
  // A cut through a multi-byte character decodes to U+FFFD: drop it.
  return new TextDecoder().decode(bytes.subarray(0, limit)).replace(
    /\uFFFD$/,
    "",
  ).trim();
}
