/**
 * The server as a separate process, as users run it, for tests of signals,
 * several instances and the Dockerfile's commands.
 *
 * @module
 */

/** A running server process. */
export interface ServerProcess {
  /** The port it listens on, once its "Listening" log line appears. */
  port: Promise<number>;
  /** Sends `signal` and waits for the exit; resolves with the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
}

/** The flags `deno task start` gives the server. */
export const SERVER_FLAGS = [
  "--frozen",
  "--allow-net",
  "--allow-env",
  "--allow-read",
  "--allow-write",
];

/**
 * Runs `args` (by default `run <SERVER_FLAGS> main.ts`) in `cwd` with `env`
 * on top of a loopback host and a free port; JSON logs are read for the port.
 */
export function startServerProcess(
  env: Record<string, string>,
  options: { cwd?: string | URL; args?: string[] } = {},
): ServerProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: options.args ?? ["run", ...SERVER_FLAGS, "main.ts"],
    cwd: options.cwd ?? new URL("../../", import.meta.url),
    env: { HOST: "127.0.0.1", PORT: "0", LOG_FORMAT: "json", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const errors = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const port = (async () => {
    let output = "";
    while (true) {
      const { value, done } = await reader.read();
      if (done) {
        throw new Error(
          `Server exited before listening: ${output} ${await errors}`,
        );
      }
      output += value;
      const match = /"url":"http:\/\/127\.0\.0\.1:(\d+)"/.exec(output);
      if (match) return Number(match[1]);
    }
  })();
  return {
    port,
    async stop(signal = "SIGTERM") {
      const running = await port.then(() => true, () => false);
      if (running) child.kill(signal);
      while (!(await reader.read()).done) { /* the rest of the log */ }
      await errors;
      return (await child.status).code;
    },
  };
}
