// deno-lint-ignore-file no-console
// An independent load generator: N Exotel-like echo calls from Node.js with
// npm:ws, sharing no code with exovoice, so the server's cost per frame is
// not measured only by our own client. Each call sends `connected`, `start`,
// then one media frame every 100 ms (3200 bytes of 8 kHz PCM by default)
// for --duration-s, then `stop`, and counts the media bytes echoed back.
//
//   node load.mjs --url ws://127.0.0.1:3000/voicebot/ws --calls 1000 \
//     --duration-s 30 --ramp-s 10 [--frame-bytes 3200]
//
// Prints one JSON line with the frames sent and received and the bytes lost.
import WebSocket from "ws";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => {
    if (arg.startsWith("--")) pairs.push([arg.slice(2), all[i + 1]]);
    return pairs;
  }, []),
);
const url = args.url;
const calls = Number(args.calls ?? 100);
const durationS = Number(args["duration-s"] ?? 20);
const rampS = Number(args["ramp-s"] ?? 5);
const frameBytes = Number(args["frame-bytes"] ?? 3200);
const frameMs = frameBytes / 16; // 16 bytes per ms at 8 kHz, 16-bit
if (!url) {
  console.error("--url is required");
  process.exit(2);
}

const totals = {
  connected: 0,
  failed: 0,
  framesSent: 0,
  framesReceived: 0,
  bytesSent: 0,
  bytesReceived: 0,
};
const payload = Buffer.alloc(frameBytes);
for (let i = 0; i < frameBytes; i += 2) {
  payload.writeInt16LE(Math.round(3000 * Math.sin(i / 7)), i);
}
const payloadBase64 = payload.toString("base64");

function runCall(index) {
  return new Promise((resolve) => {
    const streamSid = `independent${index}`;
    const ws = new WebSocket(`${url}?sample-rate=8000&call_id=ind${index}`);
    let timer;
    let sequence = 1;
    let sent = 0;
    ws.on("open", () => {
      totals.connected++;
      ws.send(JSON.stringify({ event: "connected" }));
      ws.send(JSON.stringify({
        event: "start",
        sequence_number: sequence++,
        stream_sid: streamSid,
        start: {
          stream_sid: streamSid,
          call_sid: `ind${index}`,
          account_sid: "independent",
          from: "+910000000000",
          to: "+910000000001",
          media_format: {
            encoding: "base64",
            sample_rate: "8000",
            bit_rate: "128kbps",
          },
        },
      }));
      const frames = Math.round(durationS * 1000 / frameMs);
      const started = performance.now();
      const tick = () => {
        if (sent >= frames) {
          ws.send(
            JSON.stringify({
              event: "stop",
              sequence_number: sequence++,
              stream_sid: streamSid,
            }),
          );
          // Let the echo's last chunks arrive before closing.
          setTimeout(() => ws.close(1000), 1000);
          return;
        }
        ws.send(
          `{"event":"media","sequence_number":${sequence++},"stream_sid":"${streamSid}","media":{"chunk":${
            sent + 1
          },"timestamp":"${
            Math.round(sent * frameMs)
          }","payload":"${payloadBase64}"}}`,
        );
        sent++;
        totals.framesSent++;
        totals.bytesSent += frameBytes;
        timer = setTimeout(
          tick,
          Math.max(0, started + sent * frameMs - performance.now()),
        );
      };
      tick();
    });
    ws.on("message", (data, isBinary) => {
      if (isBinary) return;
      const text = data.toString();
      if (!text.includes('"media"')) return;
      const frame = JSON.parse(text);
      const bytes = Buffer.byteLength(frame.media.payload, "base64");
      totals.framesReceived++;
      totals.bytesReceived += bytes;
    });
    ws.on("error", () => {});
    ws.on("close", () => {
      clearTimeout(timer);
      if (sent === 0) totals.failed++;
      resolve();
    });
  });
}

const all = [];
for (let i = 0; i < calls; i++) {
  all.push(
    new Promise((resolve) => setTimeout(resolve, (rampS * 1000 * i) / calls))
      .then(() => runCall(i)),
  );
}
await Promise.all(all);
console.log(
  JSON.stringify({
    ...totals,
    bytesLost: totals.bytesSent - totals.bytesReceived,
  }),
);
