/**
 * Helpers for tests that talk to a real server over loopback.
 *
 * @module
 */

import { loadConfig } from "../../src/config.ts";
import { type RunningServer, startServer } from "../../src/server.ts";

/** Starts the real server on a free loopback port, KV in memory, with `env` on top. */
export function serve(
  env: Record<string, string> = {},
): Promise<RunningServer> {
  return startServer(
    loadConfig({ HOST: "127.0.0.1", PORT: "0", KV_PATH: ":memory:", ...env }),
  );
}

/** Opens a WebSocket; resolves once it is open, or with the error's message. */
export function connect(
  url: string,
  headers?: Record<string, string>,
): Promise<WebSocket | string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.onopen = () => resolve(ws);
    ws.onerror = (event) => resolve((event as ErrorEvent).message);
  });
}

/** Resolves with the close code once `ws` has closed. */
export function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve(-1);
    ws.addEventListener("close", (event) => resolve(event.code));
  });
}

/** Closes `ws` and waits for the closing handshake to finish. */
export function closeSocket(ws: WebSocket): Promise<number> {
  const done = closed(ws);
  ws.close();
  return done;
}

/** Sends a WebSocket upgrade request with plain `fetch`, to see the HTTP answer to it. */
export function upgradeRequest(
  url: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(url.replace(/^ws/, "http"), {
    headers: {
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
      ...headers,
    },
  });
}

/** Waits, a few ms at a time, until `condition` holds. */
export async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}
