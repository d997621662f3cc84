/**
 * The soak: a few hundred echo calls, ending and being replaced all the
 * time, for a configurable time; the server's RSS is sampled throughout and
 * must be flat after warm-up. `--short` is the CI version.
 *
 * By default it starts `main.ts` itself on a free port, pinned to CPU 0, and
 * pins itself to CPU 1; `--url` and `--pid` target a running server.
 *
 * ```sh
 * deno run --allow-net --allow-env --allow-read --allow-write --allow-run bench/soak.ts \
 *   --calls 300 --duration-s 1800 --call-s 60
 * ```
 *
 * Exits 1 when RSS grew past the tolerance, a call failed or dropped, a byte
 * was lost, or the server still lists sessions after the last call.
 *
 * @module
 */

import { FlagError, parseFlags } from "./load/flags.ts";
import { mib, writeErr, writeOut } from "./load/format.ts";
import { LoadOptionError } from "./load/run.ts";
import {
  pinSelf,
  SERVER_KINDS,
  type ServerKind,
  type ServerProcess,
  ServerStartError,
  startServerProcess,
} from "./load/server.ts";
import { runSoak, type SoakOptions, type SoakReport } from "./load/soak.ts";

const USAGE = `Usage: deno task soak [flags]

  --calls N          calls live at once (default 300; --short 30)
  --duration-s S     how long calls keep starting (default 180; --short 20)
  --call-s S         length of each call (default 30; --short 4)
  --sample-s S       seconds between RSS samples (default 10; --short 2)
  --warmup-s S       RSS should be flat from here on (default 60; --short 8)
  --tolerance P      allowed RSS growth after warm-up, % (default 10; --short 25)
  --frame-bytes B    PCM bytes per caller media frame (default 3200)
  --rate HZ          sample rate (default 8000)
  --chunk-bytes B    the server's CHUNK_BYTES (default 3200)
  --server KIND      start "main" or "minimal" (default main)
  --url URL          target a running server, ws://127.0.0.1:<port>/<path> (needs --pid)
  --pid PID          with --url: the server's pid
  --server-cpu N     CPU to pin a started server to (default 0)
  --generator-cpu N  CPU to pin this process to (default 1)
  --no-pin           pin nothing
  --short            the CI version: small and about 30 s
  --json             print the report as JSON
`;

const SOAK_FLAGS = {
  numbers: [
    "calls",
    "duration-s",
    "call-s",
    "sample-s",
    "warmup-s",
    "tolerance",
    "frame-bytes",
    "rate",
    "chunk-bytes",
    "pid",
    "server-cpu",
    "generator-cpu",
  ],
  strings: ["url", "server"],
  booleans: ["json", "no-pin", "short", "help"],
} as const;

const DEFAULTS = {
  calls: 300,
  "duration-s": 180,
  "call-s": 30,
  "sample-s": 10,
  "warmup-s": 60,
  tolerance: 10,
};

const SHORT = {
  calls: 30,
  "duration-s": 20,
  "call-s": 4,
  "sample-s": 2,
  "warmup-s": 8,
  tolerance: 25,
};

async function main(args: string[]): Promise<number> {
  const flags = parseFlags(args, SOAK_FLAGS);
  if (flags.booleans.has("help")) {
    writeOut(USAGE);
    return 0;
  }
  const base: Record<string, number> = flags.booleans.has("short")
    ? SHORT
    : DEFAULTS;
  const n = flags.numbers;
  const num = (name: keyof typeof DEFAULTS) => n[name] ?? base[name];
  const kind = flags.strings.server ?? "main";
  if (!(SERVER_KINDS as readonly string[]).includes(kind)) {
    throw new FlagError(
      `Invalid --server "${kind}": expected ${SERVER_KINDS.join(" or ")}`,
    );
  }
  const pin = !flags.booleans.has("no-pin");
  if (pin) await pinSelf(n["generator-cpu"] ?? 1);
  const chunkBytes = n["chunk-bytes"] ?? 3200;

  let server: ServerProcess | undefined;
  let url = flags.strings.url;
  let pid = n.pid;
  if (url === undefined) {
    server = await startServerProcess({
      kind: kind as ServerKind,
      cpu: pin ? n["server-cpu"] ?? 0 : undefined,
      env: { BOT: "echo", CHUNK_BYTES: String(chunkBytes) },
      // V8's own heap sizing: a larger first heap (as `deno task start`
      // sets) lets garbage pile up before a collection, which would blur
      // the growth this looks for.
      v8Flags: "",
    });
    url = server.url;
    pid = server.pid;
  } else if (pid === undefined) {
    throw new FlagError("Missing --pid: the soak reads the server's RSS");
  }

  const http = new URL(url);
  http.protocol = http.protocol === "wss:" ? "https:" : "http:";
  http.pathname = "/health";
  http.search = "";
  const options: SoakOptions = {
    url,
    serverPid: pid,
    calls: num("calls"),
    durationS: num("duration-s"),
    callS: num("call-s"),
    sampleS: num("sample-s"),
    warmupS: num("warmup-s"),
    tolerancePercent: num("tolerance"),
    frameBytes: n["frame-bytes"] ?? 3200,
    sampleRate: n.rate ?? 8000,
    chunkBytes,
    healthUrl: kind === "main" || flags.strings.url ? http.href : undefined,
    onSample: (sample) =>
      writeErr(
        `t=${sample.second}s live=${sample.live} RSS=${
          mib(sample.rssKb)
        } CPU=${sample.cpuPercent}%`,
      ),
  };
  let report: SoakReport;
  try {
    report = await runSoak(options);
  } finally {
    await server?.stop();
  }
  if (flags.booleans.has("json")) {
    writeOut(JSON.stringify(report, null, 2));
  } else {
    writeOut(formatSoakReport(report, server?.kind ?? url));
  }
  const clean = report.flat && report.calls.failed === 0 &&
    report.calls.dropped === 0 && report.bytes.lost === 0 &&
    report.bytes.corrupt === 0 && (report.sessionsLeft ?? 0) === 0;
  return clean ? 0 : 1;
}

/** Formats a soak report for people. */
export function formatSoakReport(report: SoakReport, server: string): string {
  const { settings: s, calls, bytes, rssKb } = report;
  const latency = report.echoLatencyMs;
  return [
    `soak of ${server}: ${s.calls} calls live, each ${s.callS} s, new ones starting for ${s.durationS} s; RSS every ${s.sampleS} s, warm-up ${s.warmupS} s`,
    `calls      started ${calls.started}  completed ${calls.completed}  failed ${calls.failed}  dropped ${calls.dropped}`,
    `bytes      sent ${bytes.sent}  echoed ${bytes.echoed}  lost ${bytes.lost} (skipped ${bytes.skipped})  corrupt ${bytes.corrupt}`,
    `latency    echo after warm-up p50 ${latency.p50.toFixed(2)} ms  p99 ${
      latency.p99.toFixed(2)
    } ms  max ${latency.max.toFixed(2)} ms`,
    `RSS        start ${mib(rssKb.start)}  warm-up ${
      mib(rssKb.warmup)
    }  middle ${mib(rssKb.middle)}  end ${mib(rssKb.end)}${
      rssKb.after === undefined ? "" : `  after the calls ${mib(rssKb.after)}`
    }`,
    `           end vs warm-up ${report.growthPercent}% (tolerance ${s.tolerancePercent}%), trend ${report.slopeKbPerMin} KiB/min: ${
      report.flat ? "flat" : "GROWING"
    }`,
    report.sessionsLeft === undefined
      ? "sessions   not reported by the server"
      : `sessions   ${report.sessionsLeft} left in the registry after the last call`,
  ].join("\n");
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    if (
      error instanceof FlagError || error instanceof LoadOptionError ||
      error instanceof ServerStartError
    ) {
      writeErr(`soak: ${error.message}`);
      writeErr(USAGE);
      Deno.exit(2);
    }
    throw error;
  }
}
