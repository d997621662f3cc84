/**
 * Runs the tools a language model calls: code tools (a TypeScript
 * function) and webhook tools alike. Arguments are checked against the
 * tool's JSON Schema first; every failure becomes a result the model can
 * read, `{"error": "...", "body": "..."}`, never silence; several calls of
 * one model turn run at once; each result carries the `tool_call_id` it
 * answers. Independent of speech, so a speech-to-speech bot reuses it.
 *
 * @module
 */

import type {
  ToolCall,
  ToolDefinition,
} from "../../providers/llm/language_model.ts";
import { type Clock, systemClock } from "../../call/clock.ts";
import {
  type JsonSchema,
  schemaProblems,
  validateJson,
} from "./json_schema.ts";

/** What a tool learns about the call it runs for. */
export interface ToolCallInfo {
  /** Our id for the call (Exotel's CallSid). */
  callId: string;
  /** Exotel's stream id. */
  streamSid: string;
  /** The caller's number, as Exotel sent it. */
  from: string;
  /** The number called. */
  to: string;
  /** Exotel's custom parameters. */
  customParameters: Record<string, string>;
}

/** What a tool's `run` receives besides its arguments. */
export interface ToolRunContext extends ToolCallInfo {
  /** Fires when the call ends: stop work nobody will hear about. */
  signal: AbortSignal;
}

/**
 * A tool written in TypeScript. Its result (any JSON value, or text) goes
 * to the model as is; a thrown error reaches it as `{"error": message}`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const orderStatus: CodeTool = {
 *   name: "order_status",
 *   description: "Look an order up by its number.",
 *   parameters: {
 *     type: "object",
 *     properties: { orderId: { type: "string" } },
 *     required: ["orderId"],
 *   },
 *   run: ({ orderId }) => ({ orderId, status: "shipped" }),
 * };
 * const runner = new ToolRunner([codeTool(orderStatus)]);
 * const call = { callId: "CA1", streamSid: "S1", from: "", to: "", customParameters: {} };
 * const [result] = await runner.run(
 *   [{ id: "call_1", name: "order_status", arguments: '{"orderId":"A42"}' }],
 *   call,
 * );
 * assertEquals(JSON.parse(result.content), { orderId: "A42", status: "shipped" });
 * ```
 */
export interface CodeTool {
  /** The name the model calls it by: letters, digits, `_` and `-`. */
  name: string;
  /** What it does and when to use it, for the model. */
  description: string;
  /** JSON Schema of its arguments, given to the model as is. */
  parameters: JsonSchema;
  /** Does the work. `args` has passed the schema. */
  run(
    args: Record<string, unknown>,
    call: ToolRunContext,
  ): unknown | Promise<unknown>;
  /** Spoken if the tool is still running after {@linkcode SAY_AFTER_MS}. */
  say?: string;
  /** Longest run, in ms; 10 000 by default. */
  timeoutMs?: number;
  /** Argument names masked in the call record (card numbers, dates of birth). */
  redact?: string[];
}

/** How a tool call ended, in a bounded set fit for a metric label. */
export type ToolOutcome =
  | "ok"
  | "invalid_arguments"
  | "http_error"
  | "timeout"
  | "too_large"
  | "error"
  | "unknown_tool"
  | "aborted";

/** What running a tool produced: the text for the model, and how it went. */
export interface ToolExecution {
  /** How it went. */
  outcome: ToolOutcome;
  /** What the model reads: the answer, or `{"error","body"}` JSON. */
  content: string;
}

/** A tool the runner can call: a code tool, or a webhook tool from the agent file. */
export interface RunnableTool {
  /** What the model is told. */
  definition: ToolDefinition;
  /** Spoken if it is still running after {@linkcode SAY_AFTER_MS}. */
  say?: string;
  /** Argument names masked in the call record. */
  redact?: readonly string[];
  /** Runs it with arguments that passed the schema; `clock` times it out. */
  execute(
    args: Record<string, unknown>,
    call: ToolRunContext,
    clock: Pick<Clock, "now" | "schedule">,
  ): Promise<ToolExecution>;
}

/** One tool call, done: for the model's history, the record and metrics. */
export interface ToolResult {
  /** The model's id for the call, echoed as `tool_call_id`. */
  toolCallId: string;
  /** The tool. */
  name: string;
  /** The arguments as parsed, with redacted fields masked; the raw text when not JSON. */
  arguments: unknown;
  /** How it ended. */
  outcome: ToolOutcome;
  /** What the model reads. */
  content: string;
  /** How long it took. */
  latencyMs: number;
}

/** A tool that is still running after this long has its `say` line spoken. */
export const SAY_AFTER_MS = 700;

/** A code tool's default time limit. */
export const DEFAULT_CODE_TOOL_TIMEOUT_MS = 10_000;

/** How a redacted argument appears in the record. */
export const REDACTED = "[redacted]";

/** Tool names OpenAI-compatible APIs accept. */
export const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

/**
 * The model-facing text of a failure: `{"error": "...", "body": "..."}`,
 * the body left out when there is none.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * assertEquals(toolFailure("HTTP 500", "db down"), '{"error":"HTTP 500","body":"db down"}');
 * assertEquals(toolFailure("Timed out"), '{"error":"Timed out"}');
 * ```
 */
export function toolFailure(error: string, body?: string): string {
  return JSON.stringify(
    body === undefined || body === "" ? { error } : { error, body },
  );
}

/** Turns a {@linkcode CodeTool} into a {@linkcode RunnableTool}. */
export function codeTool(tool: CodeTool): RunnableTool {
  const timeoutMs = tool.timeoutMs ?? DEFAULT_CODE_TOOL_TIMEOUT_MS;
  return {
    definition: {
      name: tool.name,
      description: tool.description,
      parameters: { ...tool.parameters },
    },
    say: tool.say,
    redact: tool.redact,
    async execute(args, call, clock) {
      let cancel: (() => void) | undefined;
      const timeout = new Promise<ToolExecution>((resolve) => {
        cancel = clock.schedule(() =>
          resolve({
            outcome: "timeout",
            content: toolFailure(`timeout after ${timeoutMs} ms`),
          }), timeoutMs);
      });
      const work = (async (): Promise<ToolExecution> => {
        try {
          const value = await tool.run(args, call);
          return {
            outcome: "ok",
            content: typeof value === "string"
              ? value
              : JSON.stringify(value ?? null),
          };
        } catch (error) {
          const message = error instanceof Error
            ? error.message
            : String(error);
          return { outcome: "error", content: toolFailure(message) };
        }
      })();
      try {
        return await Promise.race([work, timeout]);
      } finally {
        cancel?.();
      }
    },
  };
}

/** Options of {@linkcode ToolRunner.run}. */
export interface RunToolsOptions {
  /** Fires when the call ends. */
  signal?: AbortSignal;
  /** Time and timers; the system clock by default. */
  clock?: Pick<Clock, "now" | "schedule">;
}

/**
 * The tools of one agent. Shared by all its calls; stateless.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const runner = new ToolRunner([codeTool({
 *   name: "add",
 *   description: "Adds two numbers.",
 *   parameters: {
 *     type: "object",
 *     properties: { a: { type: "number" }, b: { type: "number" } },
 *     required: ["a", "b"],
 *   },
 *   run: ({ a, b }) => ({ sum: Number(a) + Number(b) }),
 * })]);
 * const call = { callId: "CA1", streamSid: "S1", from: "", to: "", customParameters: {} };
 * const [result] = await runner.run(
 *   [{ id: "call_1", name: "add", arguments: '{"a":2,"b":3}' }],
 *   call,
 * );
 * assertEquals(result.content, '{"sum":5}');
 * // Arguments that break the schema reach the model as an error, not the tool.
 * const [bad] = await runner.run(
 *   [{ id: "call_2", name: "add", arguments: '{"a":2}' }],
 *   call,
 * );
 * assertEquals(bad.content.startsWith('{"error":'), true);
 * ```
 */
export class ToolRunner {
  #tools: Map<string, RunnableTool>;

  /**
   * Takes the tools.
   *
   * @throws {TypeError} for a bad or duplicate name, or a parameter schema
   * with mistakes (a misspelt type, a bad pattern).
   */
  constructor(tools: readonly RunnableTool[]) {
    this.#tools = new Map();
    for (const tool of tools) {
      const { name } = tool.definition;
      if (!TOOL_NAME.test(name)) {
        throw new TypeError(
          `Invalid tool name "${name}": expected 1 to 64 letters, digits, _ or -`,
        );
      }
      if (this.#tools.has(name)) {
        throw new TypeError(`Duplicate tool name "${name}"`);
      }
      const problems = schemaProblems(tool.definition.parameters);
      if (problems.length > 0) {
        throw new TypeError(
          `Invalid parameters of tool "${name}": ${problems.join("; ")}`,
        );
      }
      this.#tools.set(name, tool);
    }
  }

  /** What the model is told about each tool. */
  get definitions(): ToolDefinition[] {
    return [...this.#tools.values()].map((tool) => tool.definition);
  }

  /** Whether `name` is one of these tools. */
  has(name: string): boolean {
    return this.#tools.has(name);
  }

  /** The `say` line of `name`, if it has one. */
  sayLine(name: string): string | undefined {
    return this.#tools.get(name)?.say;
  }

  /**
   * Runs `calls` at once and resolves when all are done, with one result
   * per call in the order given. Never rejects.
   */
  run(
    calls: readonly ToolCall[],
    call: ToolCallInfo,
    options: RunToolsOptions = {},
  ): Promise<ToolResult[]> {
    const signal = options.signal ?? new AbortController().signal;
    const clock = options.clock ?? systemClock;
    return Promise.all(
      calls.map((toolCall) =>
        this.#runOne(toolCall, { ...call, signal }, clock)
      ),
    );
  }

  async #runOne(
    toolCall: ToolCall,
    context: ToolRunContext,
    clock: Pick<Clock, "now" | "schedule">,
  ): Promise<ToolResult> {
    const started = clock.now();
    const tool = this.#tools.get(toolCall.name);
    const parsed = parseArguments(toolCall.arguments);
    const done = (execution: ToolExecution): ToolResult => ({
      toolCallId: toolCall.id,
      name: toolCall.name,
      arguments: redact(
        parsed.ok ? parsed.value : toolCall.arguments,
        tool?.redact ?? [],
      ),
      outcome: execution.outcome,
      content: execution.content,
      latencyMs: Math.round(clock.now() - started),
    });
    if (tool === undefined) {
      return done({
        outcome: "unknown_tool",
        content: toolFailure(
          `unknown tool "${toolCall.name}": expected one of ${
            [...this.#tools.keys()].join(", ")
          }`,
        ),
      });
    }
    if (!parsed.ok) {
      return done({
        outcome: "invalid_arguments",
        content: toolFailure(`invalid arguments: ${parsed.error}`),
      });
    }
    const problems = validateJson(tool.definition.parameters, parsed.value);
    if (problems.length > 0) {
      return done({
        outcome: "invalid_arguments",
        content: toolFailure(`invalid arguments: ${problems.join("; ")}`),
      });
    }
    if (context.signal.aborted) {
      return done({
        outcome: "aborted",
        content: toolFailure("the call ended"),
      });
    }
    try {
      return done(await tool.execute(parsed.value, context, clock));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return done({ outcome: "error", content: toolFailure(message) });
    }
  }
}

type Parsed =
  | { ok: true; value: Record<string, unknown> }
  | { ok: false; error: string };

function parseArguments(text: string): Parsed {
  // Some models send nothing for a tool without parameters.
  if (text.trim() === "") return { ok: true, value: {} };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return {
      ok: false,
      error: `expected a JSON object, got ${
        JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}…` : text)
      }`,
    };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return {
      ok: false,
      error: `expected a JSON object, got ${JSON.stringify(value)}`,
    };
  }
  return { ok: true, value: value as Record<string, unknown> };
}

/** `value` with the fields named in `names` masked, at any depth. */
export function redact(value: unknown, names: readonly string[]): unknown {
  if (names.length === 0) return value;
  if (Array.isArray(value)) return value.map((item) => redact(item, names));
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map((
      [key, item],
    ) => [key, names.includes(key) ? REDACTED : redact(item, names)]),
  );
}
