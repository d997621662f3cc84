/**
 * JSON responses and the error class every HTTP handler throws, so each error
 * reaches the client as JSON with a status that fits.
 *
 * @module
 */

import { STATUS_TEXT } from "@std/http/status";

/** An error with an HTTP status, turned into a JSON response by the server. */
export class HttpError extends Error {
  /** The HTTP status to answer with. */
  readonly status: number;
  /** Machine-readable error code, e.g. `invalid_number`. */
  readonly code: string;
  /** Extra response headers, e.g. `Allow` or `Retry-After`. */
  readonly headers: Record<string, string>;

  /**
   * Creates the error: its status, and the rest named as the JSON body names
   * them.
   *
   * @example
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { HttpError } from "./json.ts";
   *
   * const error = new HttpError(405, {
   *   code: "method_not_allowed",
   *   message: "Method GET not allowed",
   *   headers: { allow: "POST" },
   * });
   * assertEquals([error.status, error.code, error.headers.allow], [
   *   405,
   *   "method_not_allowed",
   *   "POST",
   * ]);
   * ```
   */
  constructor(status: number, options: HttpErrorOptions) {
    super(options.message, { cause: options.cause });
    this.name = "HttpError";
    this.status = status;
    this.code = options.code;
    this.headers = options.headers ?? {};
  }
}

/** What an {@linkcode HttpError} says besides its status. */
export interface HttpErrorOptions {
  /** Machine-readable error code, e.g. `invalid_number`. */
  code: string;
  /** What went wrong, for the client; quotes the bad value. */
  message: string;
  /** Extra response headers, e.g. `Allow` or `Retry-After`. */
  headers?: Record<string, string>;
  /** The error that led to this one, kept for logs. */
  cause?: unknown;
}

/** A JSON response with `status` (default 200). */
export function jsonResponse(
  body: unknown,
  status = 200,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

/**
 * The JSON response for an error: `{"error": {"code", "message", "status"}}`.
 * Anything that is not an {@linkcode HttpError} becomes a 500 whose message
 * reveals nothing internal.
 */
export function errorResponse(error: unknown): Response {
  if (error instanceof HttpError) {
    return jsonResponse(
      {
        error: {
          status: error.status,
          code: error.code,
          message: error.message,
        },
      },
      error.status,
      error.headers,
    );
  }
  return jsonResponse(
    {
      error: { status: 500, code: "internal_error", message: STATUS_TEXT[500] },
    },
    500,
  );
}

/**
 * Reads a request's parameters from its query string and, for POST, its
 * form-encoded or JSON body; body values win over query values.
 *
 * @throws {HttpError} 400 for a body that does not parse, 413 past `maxBytes`.
 */
export async function readParams(
  request: Request,
  maxBytes = 64 * 1024,
): Promise<Record<string, unknown>> {
  const params: Record<string, unknown> = Object.fromEntries(
    new URL(request.url).searchParams,
  );
  if (request.method !== "POST" && request.method !== "PUT") return params;
  const text = await readBodyText(request, maxBytes);
  if (text.trim() === "") return params;
  const type = request.headers.get("content-type") ?? "";
  if (type.includes("application/x-www-form-urlencoded")) {
    return { ...params, ...Object.fromEntries(new URLSearchParams(text)) };
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, {
      code: "invalid_body",
      message: "Invalid request body: expected JSON or a form",
    });
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HttpError(400, {
      code: "invalid_body",
      message: "Invalid request body: expected a JSON object",
    });
  }
  return { ...params, ...body };
}

async function readBodyText(
  request: Request,
  maxBytes: number,
): Promise<string> {
  const declared = Number(request.headers.get("content-length"));
  if (declared > maxBytes) throw tooLarge(maxBytes);
  if (!request.body) return "";
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of request.body) {
    total += chunk.length;
    if (total > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return new TextDecoder().decode(bytes);
}

function tooLarge(maxBytes: number): HttpError {
  return new HttpError(413, {
    code: "body_too_large",
    message: `Request body larger than ${maxBytes} bytes`,
  });
}
