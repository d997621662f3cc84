/**
 * Serving a file with HTTP range requests, as an `<audio>` element needs to
 * seek: `Range: bytes=a-b` gets 206 with that slice, a range past the end
 * gets 416, anything else the whole file. The file is streamed, never read
 * into memory whole.
 *
 * @module
 */

import { HttpError } from "../http/json.ts";

/** A byte range, both ends included. */
export interface ByteRange {
  /** First byte. */
  start: number;
  /** Last byte. */
  end: number;
}

/** Thrown by {@linkcode parseRange} for a range that asks for nothing the file has. */
export class RangeNotSatisfiableError extends Error {
  /** Creates the error for the header `range` on a file of `size` bytes. */
  constructor(range: string, size: number) {
    super(`Range "${range}" is outside the file's ${size} bytes`);
    this.name = "RangeNotSatisfiableError";
  }
}

/**
 * Reads a `Range` header for a file of `size` bytes: the one range asked for,
 * or undefined for the whole file (no header, several ranges, or a unit other
 * than bytes, which the RFC lets a server ignore).
 *
 * @example
 * ```ts
 * import { assertEquals, assertThrows } from "@std/assert";
 * import { parseRange, RangeNotSatisfiableError } from "./file_response.ts";
 * assertEquals(parseRange("bytes=0-99", 1000), { start: 0, end: 99 });
 * assertEquals(parseRange("bytes=-100", 1000), { start: 900, end: 999 });
 * assertEquals(parseRange(null, 1000), undefined);
 * assertThrows(() => parseRange("bytes=2000-", 1000), RangeNotSatisfiableError);
 * ```
 *
 * @throws {RangeNotSatisfiableError} when the range starts past the end.
 */
export function parseRange(
  header: string | null,
  size: number,
): ByteRange | undefined {
  if (header === null) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === "" && match[2] === "")) return undefined;
  if (match[1] === "") {
    const suffix = Number(match[2]);
    if (suffix === 0) throw new RangeNotSatisfiableError(header, size);
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === "" ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size || end < start) {
    throw new RangeNotSatisfiableError(header, size);
  }
  return { start, end };
}

/** Options of {@linkcode fileResponse}. */
export interface FileResponseOptions {
  /** The `Content-Type`. */
  contentType: string;
}

/**
 * Answers `request` with the file at `path`, honouring its `Range` header.
 *
 * @throws {HttpError} 404 when the file is gone, 416 for an unsatisfiable range.
 */
export async function fileResponse(
  request: Request,
  path: string,
  options: FileResponseOptions,
): Promise<Response> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new HttpError(404, {
        code: "recording_not_found",
        message: `Recording file "${path}" is gone`,
      });
    }
    throw error;
  }
  try {
    const { size } = await file.stat();
    let range: ByteRange | undefined;
    try {
      range = parseRange(request.headers.get("range"), size);
    } catch (error) {
      if (!(error instanceof RangeNotSatisfiableError)) throw error;
      throw new HttpError(416, {
        code: "range_not_satisfiable",
        message: error.message,
        headers: { "content-range": `bytes */${size}` },
      });
    }
    const { start, end } = range ?? { start: 0, end: size - 1 };
    const length = Math.max(0, end - start + 1);
    const headers: Record<string, string> = {
      "content-type": options.contentType,
      "content-length": String(length),
      "accept-ranges": "bytes",
      "cache-control": "private, no-store",
    };
    if (range) headers["content-range"] = `bytes ${start}-${end}/${size}`;
    if (request.method === "HEAD" || length === 0) {
      file.close();
      return new Response(null, { status: range ? 206 : 200, headers });
    }
    await file.seek(start, Deno.SeekMode.Start);
    return new Response(sliceStream(file, length), {
      status: range ? 206 : 200,
      headers,
    });
  } catch (error) {
    file.close();
    throw error;
  }
}

/** Streams `length` bytes of `file` from where it is, closing it at the end or on cancel. */
function sliceStream(file: Deno.FsFile, length: number): ReadableStream {
  let left = length;
  let closed = false;
  const close = () => {
    if (!closed) file.close();
    closed = true;
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const buffer = new Uint8Array(Math.min(64 * 1024, left));
        const read = await file.read(buffer);
        if (read === null || read === 0) {
          close();
          controller.close();
          return;
        }
        left -= read;
        controller.enqueue(buffer.subarray(0, read));
        if (left <= 0) {
          close();
          controller.close();
        }
      } catch (error) {
        close();
        controller.error(error);
      }
    },
    cancel: close,
  });
}
