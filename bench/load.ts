/**
 * The load benchmark: plays N Exotel echo calls with real-time media against
 * a server on 127.0.0.1 and checks every echoed byte.
 *
 * By default it starts the server itself (`--server main`, exovoice's
 * `main.ts`, or `--server minimal`, the baseline in `bench/minimal_echo.ts`)
 * on a free port, pinned to CPU 0 with `taskset`, and pins itself to CPU 1.
 * `--url` targets a server already running instead (`--pid` adds its CPU and
 * RSS).
 *
 * ```sh
 * deno run --allow-net --allow-env --allow-read --allow-write --allow-run bench/load.ts \
 *   --calls 2000 --duration-s 30 --frame-bytes 3200 --ramp-s 10
 * ```
 *
 * Exits 1 when any call failed, dropped, or lost or corrupted a byte.
 *
 * @module
 */

import { FlagError, parseFlags } from "./load/flags.ts";
import {
  formatLoadReport,
  LATENCY_DEFINITIONS,
  type RunLabel,
  writeErr,
  writeOut,
} from "./load/format.ts";
import { LoadOptionError, type LoadReport, runLoad } from "./load/run.ts";
import {
  pinSelf,
  SERVER_KINDS,
  type ServerKind,
  type ServerProcess,
  ServerStartError,
  startServerProcess,
} from "./load/server.ts";

const USAGE = `Usage: deno task bench:load [flags]

  --calls N          calls to place (default 100)
  --duration-s S     caller audio per call, seconds (default 20)
  --frame-bytes B    PCM bytes per caller media frame (default 3200)
  --rate HZ          sample rate: 8000, 16000 or 24000 (default 8000)
  --ramp-s S         spread call starts over S seconds (default 5)
  --settle-s S       wait after the ramp before measuring (default 1)
  --chunk-bytes B    the server's CHUNK_BYTES (default 3200; passed to a server started here)
  --server KIND      start "main" (exovoice) or "minimal" (baseline echo) (default main)
  --url URL          target a running server instead, ws://127.0.0.1:<port>/<path>
  --pid PID          with --url: the server's pid, for CPU and RSS
  --token T          send Authorization: Bearer T (and set EXOTEL_WS_TOKEN on a server started here)
  --server-cpu N     CPU to pin a started server to (default 0)
  --generator-cpu N  CPU to pin this generator to (default 1)
  --no-pin           pin nothing
  --cpu-prof DIR     start the server with --cpu-prof, profiles written to DIR on exit
  --server-output    show the server's stdout and stderr
  --json             print the report as JSON
`;

/** Flags of the load benchmark. */
export const LOAD_FLAGS = {
  numbers: [
    "calls",
    "duration-s",
    "frame-bytes",
    "rate",
    "ramp-s",
    "settle-s",
    "chunk-bytes",
    "pid",
    "server-cpu",
    "generator-cpu",
  ],
  strings: ["url", "server", "token", "cpu-prof"],
  booleans: ["json", "no-pin", "server-output", "help"],
} as const;

async function main(args: string[]): Promise<number> {
  const flags = parseFlags(args, LOAD_FLAGS);
  if (flags.booleans.has("help")) {
    writeOut(USAGE);
    return 0;
  }
  const n = flags.numbers;
  const kind = flags.strings.server ?? "main";
  if (!isServerKind(kind)) {
    throw new FlagError(
      `Invalid --server "${kind}": expected ${SERVER_KINDS.join(" or ")}`,
    );
  }
  const pin = !flags.booleans.has("no-pin");
  const generatorCpu = n["generator-cpu"] ?? 1;
  const chunkBytes = n["chunk-bytes"] ?? 3200;
  const token = flags.strings.token;
  const label: RunLabel = { server: kind };
  if (pin && await pinSelf(generatorCpu)) label.generatorCpu = generatorCpu;

  let server: ServerProcess | undefined;
  let url = flags.strings.url;
  let pid = n.pid;
  if (url === undefined) {
    const profileDir = flags.strings["cpu-prof"];
    server = await startServerProcess({
      kind,
      cpu: pin ? n["server-cpu"] ?? 0 : undefined,
      env: {
        BOT: "echo",
        CHUNK_BYTES: String(chunkBytes),
        ...(token === undefined ? {} : { EXOTEL_WS_TOKEN: token }),
      },
      denoFlags: profileDir === undefined
        ? []
        : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`],
      output: flags.booleans.has("server-output") ? "inherit" : "null",
    });
    url = server.url;
    pid = server.pid;
    label.pid = pid;
    if (server.pinned) label.serverCpu = n["server-cpu"] ?? 0;
  } else {
    label.server = url;
    label.pid = pid;
  }

  let report: LoadReport;
  try {
    report = await runLoad({
      url,
      calls: n.calls ?? 100,
      durationS: n["duration-s"] ?? 20,
      frameBytes: n["frame-bytes"] ?? 3200,
      sampleRate: n.rate ?? 8000,
      rampS: n["ramp-s"] ?? 5,
      settleS: n["settle-s"],
      chunkBytes,
      serverPid: pid,
      headers: token === undefined
        ? undefined
        : { authorization: `Bearer ${token}` },
      onProgress: (line) => writeErr(line),
    });
  } finally {
    const status = await server?.stop();
    if (status && !status.success) {
      writeErr(`server exited with code ${status.code}`);
    }
  }
  if (flags.booleans.has("json")) {
    writeOut(JSON.stringify({ ...label, ...report }, null, 2));
  } else {
    writeOut(formatLoadReport(report, label));
    writeOut("");
    writeOut(LATENCY_DEFINITIONS.join("\n"));
  }
  const clean = report.calls.failed === 0 && report.calls.dropped === 0 &&
    report.bytes.lost === 0 && report.bytes.corrupt === 0 &&
    report.bytes.extra === 0 && report.badMedia === 0;
  return clean ? 0 : 1;
}

function isServerKind(value: string): value is ServerKind {
  return (SERVER_KINDS as readonly string[]).includes(value);
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    if (
      error instanceof FlagError || error instanceof LoadOptionError ||
      error instanceof ServerStartError
    ) {
      writeErr(`bench:load: ${error.message}`);
      writeErr(USAGE);
      Deno.exit(2);
    }
    throw error;
  }
}
