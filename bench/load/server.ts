/**
 * Starts the server under test as a child process on 127.0.0.1, pinned to
 * one CPU when `taskset` exists, and stops it again.
 *
 * @module
 */

/** Which server to start: exovoice's `main.ts` or the minimal echo baseline. */
export type ServerKind = "main" | "minimal";

/** The server kinds {@linkcode startServerProcess} knows. */
export const SERVER_KINDS: readonly ServerKind[] = ["main", "minimal"];

/** Options of {@linkcode startServerProcess}. */
export interface ServerProcessOptions {
  /** Which server. */
  kind: ServerKind;
  /** The CPU to pin it to with `taskset -c`; `undefined` leaves it unpinned. */
  cpu?: number;
  /** Environment added to ours (PORT and HOST are set by the harness). */
  env?: Record<string, string>;
  /** Extra `deno run` flags, e.g. `--cpu-prof`. */
  denoFlags?: string[];
  /**
   * V8's flags, as `--v8-flags` takes them; `""` for V8's defaults. By
   * default exovoice runs with those of `deno task start`, as users run it,
   * and the minimal echo with V8's defaults.
   */
  v8Flags?: string;
  /** Where the server's stdout and stderr go (default `"null"`). */
  output?: "null" | "inherit";
  /** How long it may take to accept connections (default 30000 ms). */
  readyTimeoutMs?: number;
}

/** Error thrown when the server does not come up. */
export class ServerStartError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ServerStartError";
  }
}

const SCRIPTS: Record<ServerKind, URL> = {
  main: new URL("../../main.ts", import.meta.url),
  minimal: new URL("../minimal_echo.ts", import.meta.url),
};
const CONFIG = new URL("../../deno.json", import.meta.url);
const STOP_TIMEOUT_MS = 15_000;

/** A server running as a child process. */
export class ServerProcess implements AsyncDisposable {
  /** The child's pid (the server itself: `taskset` execs it). */
  readonly pid: number;
  /** The port it listens on, on 127.0.0.1. */
  readonly port: number;
  /** Which server it is. */
  readonly kind: ServerKind;
  /** Whether it was pinned with `taskset`. */
  readonly pinned: boolean;
  #child: Deno.ChildProcess;
  #dataDir?: string;

  /** Wraps a started child; use {@linkcode startServerProcess}. */
  constructor(
    child: Deno.ChildProcess,
    options: {
      port: number;
      kind: ServerKind;
      pinned: boolean;
      dataDir?: string;
    },
  ) {
    this.#child = child;
    this.#dataDir = options.dataDir;
    this.pid = child.pid;
    this.port = options.port;
    this.kind = options.kind;
    this.pinned = options.pinned;
  }

  /** The voicebot WebSocket URL (every path is the echo on the minimal server). */
  get url(): string {
    return `ws://127.0.0.1:${this.port}/voicebot/ws`;
  }

  /** Resolves with the exit status once the process has exited. */
  get status(): Promise<Deno.CommandStatus> {
    return this.#child.status;
  }

  /** Sends SIGTERM, waits for the exit (SIGKILL after 15 s) and returns the status. */
  async stop(): Promise<Deno.CommandStatus> {
    const timer = setTimeout(() => this.#signal("SIGKILL"), STOP_TIMEOUT_MS);
    this.#signal("SIGTERM");
    try {
      return await this.#child.status;
    } finally {
      clearTimeout(timer);
      if (this.#dataDir !== undefined) {
        await Deno.remove(this.#dataDir, { recursive: true }).catch(() => {});
      }
    }
  }

  /** Same as {@linkcode ServerProcess.stop}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  #signal(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch {
      // Already exited.
    }
  }
}

/** Starts a server on a free port of 127.0.0.1 and waits until it accepts connections. */
export async function startServerProcess(
  options: ServerProcessOptions,
): Promise<ServerProcess> {
  const port = freePort();
  const pinned = options.cpu !== undefined && await hasTaskset();
  // Call records go to a fresh Deno KV file, as with `deno task start`, but
  // not into the checkout.
  const dataDir = options.kind === "main"
    ? await Deno.makeTempDir({ prefix: "exovoice_bench_" })
    : undefined;
  const deno = [
    Deno.execPath(),
    "run",
    "--frozen",
    `--config=${decodeURIComponent(CONFIG.pathname)}`,
    "--allow-net",
    "--allow-env",
    "--allow-read",
    "--allow-write",
    ...await v8FlagsFor(options),
    ...(options.denoFlags ?? []),
    decodeURIComponent(SCRIPTS[options.kind].pathname),
  ];
  const argv = pinned ? ["taskset", "-c", String(options.cpu), ...deno] : deno;
  const output = options.output ?? "null";
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    env: {
      ...(dataDir === undefined ? {} : { KV_PATH: `${dataDir}/exovoice.kv` }),
      ...options.env,
      HOST: "127.0.0.1",
      PORT: String(port),
    },
    stdin: "null",
    stdout: output,
    stderr: output,
  }).spawn();
  const server = new ServerProcess(child, {
    port,
    kind: options.kind,
    pinned,
    dataDir,
  });
  const exited = child.status.then((status) => status);
  const deadline = performance.now() + (options.readyTimeoutMs ?? 30_000);
  while (!await accepts(port)) {
    const early = await Promise.race([exited, delay(100)]);
    if (early) {
      await server.stop();
      throw new ServerStartError(
        `Server "${options.kind}" exited with code ${early.code} before listening on port ${port}`,
      );
    }
    if (performance.now() > deadline) {
      await server.stop();
      throw new ServerStartError(
        `Server "${options.kind}" did not listen on port ${port} in time`,
      );
    }
  }
  return server;
}

/** The `--v8-flags` argument `options` asks for, if any. */
async function v8FlagsFor(options: ServerProcessOptions): Promise<string[]> {
  const flags = options.v8Flags ??
    (options.kind === "main" ? await startTaskV8Flags() : "");
  return flags === "" ? [] : [`--v8-flags=${flags}`];
}

/** The V8 flags `deno task start` runs the server with (`""` for none). */
export async function startTaskV8Flags(): Promise<string> {
  const config = JSON.parse(await Deno.readTextFile(CONFIG));
  const start: string = config.tasks.start;
  return start.match(/--v8-flags=(\S+)/)?.[1] ?? "";
}

/** True when the `taskset` command runs here. */
export async function hasTaskset(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("taskset", {
      args: ["-c", "0", "true"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

/** Pins every thread of this process to `cpu`; false when `taskset` is missing or fails. */
export async function pinSelf(cpu: number): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("taskset", {
      args: ["-a", "-p", "-c", String(cpu), String(Deno.pid)],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

async function accepts(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

function delay(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms));
}
