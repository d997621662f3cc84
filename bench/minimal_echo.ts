/**
 * The load benchmark's baseline: the least a Deno server can do and still
 * echo an Exotel Voicebot call. It parses each frame, decodes the media
 * payload and sends it straight back re-encoded under the call's stream id.
 * It has no session map, logging, pacing, re-chunking, limits or auth, so
 * the gap between it and exovoice is what those features cost.
 *
 * Run: `PORT=3001 deno run --allow-net --allow-env bench/minimal_echo.ts`
 * (HOST defaults to 127.0.0.1). Every path answers the WebSocket.
 *
 * @module
 */

/** Options of {@linkcode serveMinimalEcho}. */
export interface MinimalEchoOptions {
  /** Address to listen on (default 127.0.0.1). */
  hostname?: string;
  /** Port to listen on; 0 picks a free one. */
  port: number;
}

/**
 * Serves the minimal protocol echo until the returned server is shut down.
 *
 * @example
 * ```ts ignore
 * const server = serveMinimalEcho({ port: 0 });
 * // ws://127.0.0.1:<server.addr.port>/voicebot/ws
 * await server.shutdown();
 * ```
 */
export function serveMinimalEcho(
  options: MinimalEchoOptions,
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port,
    onListen() {},
  }, (request) => {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("minimal echo\n");
    }
    const { socket, response } = Deno.upgradeWebSocket(request);
    let streamSid = "";
    socket.onmessage = (event: MessageEvent) => {
      if (typeof event.data !== "string") return;
      let frame: unknown;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (!isObject(frame)) return;
      if (frame.event === "media" && isObject(frame.media)) {
        const { payload } = frame.media;
        if (typeof payload !== "string") return;
        let pcm: Uint8Array;
        try {
          pcm = Uint8Array.fromBase64(payload);
        } catch {
          return;
        }
        socket.send(
          `{"event":"media","stream_sid":${
            JSON.stringify(streamSid)
          },"media":{"payload":"${pcm.toBase64()}"}}`,
        );
      } else if (frame.event === "start") {
        const start = isObject(frame.start) ? frame.start : {};
        const sid = start.stream_sid ?? frame.stream_sid;
        streamSid = typeof sid === "string" ? sid : "";
      } else if (frame.event === "stop") {
        socket.close(1000);
      }
    };
    return response;
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

if (import.meta.main) {
  // Exit cleanly so that `--cpu-prof` writes its profile.
  Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
  serveMinimalEcho({
    hostname: Deno.env.get("HOST") ?? "127.0.0.1",
    port: Number(Deno.env.get("PORT") ?? "3001"),
  });
}
