/**
 * exovoice's `main.ts` run as its own process (like `server_process.ts`, but
 * with its pid and whole log at hand), optionally under a low
 * descriptor limit (`ulimit -n`), so that tests can exhaust its descriptors,
 * count them in `/proc/<pid>/fd`, and see whether it survives.
 *
 * @module
 */

/** A running server process. */
export interface ServerUnderLimits extends AsyncDisposable {
  /** The process id, whose `/proc/<pid>` tests read. */
  pid: number;
  /** The port it listens on. */
  port: number;
  /** Everything it has logged so far. */
  log(): string;
  /** Whether it is still running. */
  alive(): boolean;
  /** Its open descriptors, counted in `/proc/<pid>/fd`. */
  openFds(): Promise<number>;
  /** Stops it with SIGTERM and waits for it to exit. */
  stop(): Promise<Deno.CommandStatus>;
}

/** Options for {@linkcode spawnServer}. */
export interface SpawnOptions {
  /** The descriptor limit to run under (`ulimit -n`); the inherited one by default. */
  fdLimit?: number;
  /** Settings on top of a loopback-only default environment. */
  env?: Record<string, string>;
  /** Runs with `--allow-all`, which Deno requires to read `/proc/self`. */
  allowAll?: boolean;
}

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const LISTENING = /Listening on "?https?:\/\/[^:]+:(\d+)/;
/** How long a server may take to listen before the test gives up on it. */
const START_LIMIT_MS = 30_000;

/** Starts `main.ts` on 127.0.0.1 with a free port and waits until it listens. */
export async function spawnServer(
  options: SpawnOptions = {},
): Promise<ServerUnderLimits> {
  const dir = await Deno.makeTempDir({ prefix: "exovoice_proc_" });
  const flags = options.allowAll
    ? ["--allow-all"]
    : ["--allow-net", "--allow-env", "--allow-read", "--allow-write"];
  const deno = [Deno.execPath(), "run", "--frozen", ...flags, MAIN]
    .map((arg) => `'${arg}'`).join(" ");
  const limit = options.fdLimit ? `ulimit -n ${options.fdLimit} && ` : "";
  const child = new Deno.Command("bash", {
    args: ["-c", `${limit}exec ${deno}`],
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? dir,
      DENO_DIR: Deno.env.get("DENO_DIR") ?? "",
      HOST: "127.0.0.1",
      PORT: "0",
      KV_PATH: `${dir}/exovoice.kv`,
      LOG_FORMAT: "text",
      ...options.env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  let exited = false;
  const status = child.status.then((status) => {
    exited = true;
    return status;
  });
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk;
    }
  };
  const collected = Promise.all([collect(child.stdout), collect(child.stderr)]);
  const giveUpAt = Date.now() + START_LIMIT_MS;
  while (!LISTENING.test(text)) {
    if (!exited && Date.now() > giveUpAt) child.kill("SIGKILL");
    if (exited) {
      await collected;
      throw new Error(`The server exited before listening:\n${text}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const port = Number(LISTENING.exec(text)![1]);
  let stopped: Promise<Deno.CommandStatus> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      if (!exited) child.kill("SIGTERM");
      const result = await status;
      await collected;
      await Deno.remove(dir, { recursive: true });
      return result;
    })();
  return {
    pid: child.pid,
    port,
    log: () => text,
    alive: () => !exited,
    async openFds() {
      const { stdout } = await new Deno.Command("ls", {
        args: [`/proc/${child.pid}/fd`],
        stdout: "piped",
        stderr: "null",
      }).output();
      return new TextDecoder().decode(stdout).split("\n").filter(Boolean)
        .length;
    },
    stop,
    [Symbol.asyncDispose]: async () => void await stop(),
  };
}
