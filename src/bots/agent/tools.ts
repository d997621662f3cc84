/**
 * The call-control tools the language model may call, in the OpenAI
 * tool-calling format, and what a call of one means. Pure.
 *
 * @module
 */

import type {
  ToolCall,
  ToolDefinition,
} from "../../providers/llm/language_model.ts";

/** Ends the call after a goodbye. */
export const END_CALL_TOOL: ToolDefinition = {
  name: "end_call",
  description:
    "End the phone call. Use it when the caller says goodbye or the conversation is complete. The goodbye is spoken before the line closes.",
  parameters: {
    type: "object",
    properties: {
      goodbye: {
        type: "string",
        description:
          "A short goodbye to say before hanging up, in the caller's language. Leave out if you already said goodbye.",
      },
      reason: {
        type: "string",
        description: "Why the call ends, for the logs.",
      },
    },
    required: [],
    additionalProperties: false,
  },
};

/** Hands the call on to the next step of the Exotel flow (usually a human agent). */
export const TRANSFER_TOOL: ToolDefinition = {
  name: "transfer",
  description:
    "Transfer the caller to a human agent. Use it when the caller asks for a person or you cannot help.",
  parameters: {
    type: "object",
    properties: {
      message: {
        type: "string",
        description:
          "A short line to say before transferring, in the caller's language.",
      },
      reason: {
        type: "string",
        description:
          "Why the caller is transferred, for the agent and the logs.",
      },
    },
    required: [],
    additionalProperties: false,
  },
};

/** Every tool the agent offers. */
export const AGENT_TOOLS: readonly ToolDefinition[] = [
  END_CALL_TOOL,
  TRANSFER_TOOL,
];

/** What a tool call asks the agent to do. */
export type ToolAction =
  | { kind: "end_call"; callId: string; say?: string; reason?: string }
  | { kind: "transfer"; callId: string; say?: string; reason?: string }
  | { kind: "unknown"; callId: string; name: string };

/**
 * Reads a tool call. Arguments that are not valid JSON are treated as
 * absent: a model that garbles them still ends or transfers the call.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * assertEquals(
 *   parseToolCall({ id: "c1", name: "end_call", arguments: '{"goodbye":"Bye!"}' }),
 *   { kind: "end_call", callId: "c1", say: "Bye!" },
 * );
 * // Garbled arguments still end the call.
 * assertEquals(
 *   parseToolCall({ id: "c2", name: "end_call", arguments: "{goodbye" }),
 *   { kind: "end_call", callId: "c2" },
 * );
 * ```
 */
export function parseToolCall(call: ToolCall): ToolAction {
  let args: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(call.arguments);
    if (typeof parsed === "object" && parsed !== null) {
      args = parsed as Record<string, unknown>;
    }
  } catch {
    // Garbled arguments: act on the name alone.
  }
  const text = (key: string) => {
    const value = args[key];
    return typeof value === "string" && value.trim() !== ""
      ? value.trim()
      : undefined;
  };
  const defined = <T extends Record<string, unknown>>(action: T): T =>
    Object.fromEntries(
      Object.entries(action).filter(([, value]) => value !== undefined),
    ) as T;
  switch (call.name) {
    case "end_call":
      return defined({
        kind: "end_call",
        callId: call.id,
        say: text("goodbye") ?? text("message"),
        reason: text("reason"),
      });
    case "transfer":
      return defined({
        kind: "transfer",
        callId: call.id,
        say: text("message") ?? text("goodbye"),
        reason: text("reason"),
      });
    default:
      return { kind: "unknown", callId: call.id, name: call.name };
  }
}
