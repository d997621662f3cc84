/**
 * The language-model contract: a chat turn streamed as text deltas and tool
 * calls, in the OpenAI Chat Completions message shape.
 *
 * @module
 */

/** A tool the model may call, described with a JSON Schema. */
export interface ToolDefinition {
  /** The tool's name. */
  name: string;
  /** What it does, for the model. */
  description: string;
  /** JSON Schema of its arguments. */
  parameters: Record<string, unknown>;
}

/** A tool call the model made. */
export interface ToolCall {
  /** The vendor's id for the call. */
  id: string;
  /** The tool's name. */
  name: string;
  /** Its arguments, as the JSON text the model wrote. */
  arguments: string;
}

/** One message of the conversation. */
export type ChatMessage =
  | { role: "system" | "user"; content: string }
  | { role: "assistant"; content: string; toolCalls?: ToolCall[] }
  | { role: "tool"; toolCallId: string; content: string };

/** What a streamed completion yields. */
export type CompletionEvent =
  | { type: "text"; text: string }
  | { type: "tool_call"; call: ToolCall };

/** Options of a completion. */
export interface CompletionOptions {
  /** Tools the model may call. */
  tools?: ToolDefinition[];
  /** Aborts the request (barge-in). */
  signal?: AbortSignal;
}

/** A chat model that streams. */
export interface LanguageModel {
  /** The vendor's name, for logs and metrics. */
  readonly name: string;
  /** Streams the model's reply to `messages`. Throws a {@linkcode ProviderError} on failure. */
  complete(
    messages: ChatMessage[],
    options?: CompletionOptions,
  ): AsyncIterable<CompletionEvent>;
}
