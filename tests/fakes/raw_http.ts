/**
 * An HTTP/1 client over a bare TCP connection, for requests `fetch` will not
 * send: malformed upgrades, HTTP/1.0, oversized headers.
 *
 * @module
 */

/** An HTTP answer as read off the wire. */
export interface RawResponse {
  /** The status line's protocol, e.g. `HTTP/1.1`. */
  protocol: string;
  /** The status code. */
  status: number;
  /** Response headers, names in lower case. */
  headers: Headers;
  /** The body as text (empty for 101 and bodiless answers). */
  body: string;
}

const decoder = new TextDecoder();

/**
 * Sends `request` (the whole request text, headers ending in a blank line)
 * to 127.0.0.1:`port` and reads one response: up to its Content-Length, or
 * its headers for a 101, or until the server closes.
 */
export async function rawRequest(
  port: number,
  request: string,
): Promise<RawResponse> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const bytes = new TextEncoder().encode(request);
    for (let offset = 0; offset < bytes.length;) {
      offset += await conn.write(bytes.subarray(offset));
    }
    let text = "";
    const buffer = new Uint8Array(64 * 1024);
    while (true) {
      const parsed = parse(text);
      if (parsed) return parsed;
      const read = await conn.read(buffer);
      if (read === null) {
        const final = parse(text, true);
        if (final) return final;
        throw new Error(`Connection closed after "${text.slice(0, 200)}"`);
      }
      text += decoder.decode(buffer.subarray(0, read));
    }
  } finally {
    conn.close();
  }
}

function parse(text: string, ended = false): RawResponse | undefined {
  const headEnd = text.indexOf("\r\n\r\n");
  if (headEnd < 0) return undefined;
  const [statusLine, ...lines] = text.slice(0, headEnd).split("\r\n");
  const [protocol, status] = statusLine.split(" ");
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  const body = text.slice(headEnd + 4);
  const length = headers.get("content-length");
  if (
    status !== "101" && !ended &&
    (length === null || new TextEncoder().encode(body).length < Number(length))
  ) {
    return undefined;
  }
  return { protocol, status: Number(status), headers, body };
}

/** A WebSocket opening handshake for `path`, with `headers` replacing or (as null) removing the usual ones. */
export function upgradeText(
  path: string,
  options: {
    version?: "HTTP/1.1" | "HTTP/1.0";
    method?: string;
    headers?: Record<string, string | null>;
  } = {},
): string {
  const headers: Record<string, string | null> = {
    Host: "127.0.0.1",
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
    ...options.headers,
  };
  const lines = Object.entries(headers)
    .filter((entry): entry is [string, string] => entry[1] !== null)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("");
  return `${options.method ?? "GET"} ${path} ${
    options.version ?? "HTTP/1.1"
  }\r\n${lines}\r\n`;
}
