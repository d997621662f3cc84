/**
 * No Docker engine runs on our machines, so this checks the Dockerfile the
 * rest of the way: the base image is the Deno we test with, it runs as
 * `deno` with a HEALTHCHECK, and its own commands (the `deno` RUN steps, the
 * CMD, the HEALTHCHECK) work when run the same way on the files it copies.
 */
import { assertEquals } from "@std/assert";
import { startServerProcess } from "./fakes/server_process.ts";

const root = new URL("../", import.meta.url);
const dockerfile = (await Deno.readTextFile(new URL("Dockerfile", root)))
  .replaceAll("\\\n", " ");
const instructions = dockerfile.split("\n").map((line) => line.trim()).filter((
  line,
) => line !== "" && !line.startsWith("#"));
const all = (keyword: string) =>
  instructions.filter((line) => line.startsWith(`${keyword} `)).map((line) =>
    line.slice(keyword.length + 1)
  );
const json = (text: string): string[] =>
  JSON.parse(text.slice(text.indexOf("[")));

Deno.test("the image is the Deno we test with, runs as deno, and has a health check", () => {
  assertEquals(all("FROM"), [`denoland/deno:${Deno.version.deno}`]);
  assertEquals(all("USER"), ["deno"]);
  assertEquals(all("HEALTHCHECK").length, 1);
});

Deno.test("the Dockerfile's own commands build and serve, and its health check passes", async () => {
  const app = await Deno.makeTempDir();
  try {
    for (const copy of all("COPY")) {
      const sources = copy.split(/\s+/).slice(0, -1);
      for (const source of sources) {
        await copyPath(new URL(source, root), `${app}/${source}`);
      }
    }
    const env = {
      KV_PATH: `${app}/data/exovoice.kv`,
      HOST: "127.0.0.1",
      PORT: "0",
    };
    for (
      const run of all("RUN").filter((command) => command.startsWith("deno "))
    ) {
      const { code, stderr } = await deno(run.split(/\s+/).slice(1), {
        cwd: app,
        env,
      });
      assertEquals(code, 0, `RUN ${run}: ${stderr}`);
    }
    const server = startServerProcess(env, {
      cwd: app,
      args: json(all("CMD")[0]),
    });
    const port = String(await server.port);
    const [, ...check] = json(all("HEALTHCHECK")[0]);
    const health = await deno(check, { cwd: app, env: { PORT: port } });
    assertEquals(await server.stop(), 0);
    assertEquals(health.code, 0, `HEALTHCHECK failed: ${health.stderr}`);
  } finally {
    await Deno.remove(app, { recursive: true });
  }
});

async function deno(
  args: string[],
  options: { cwd: string; env: Record<string, string> },
) {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args,
    ...options,
    stdout: "null",
  }).output();
  return { code, stderr: new TextDecoder().decode(stderr) };
}

async function copyPath(from: URL, to: string): Promise<void> {
  const info = await Deno.stat(from);
  if (!info.isDirectory) {
    await Deno.mkdir(to.replace(/\/[^/]*$/, ""), { recursive: true });
    return await Deno.copyFile(from, to);
  }
  for await (const entry of Deno.readDir(from)) {
    await copyPath(
      new URL(
        `${entry.name}${entry.isDirectory ? "/" : ""}`,
        `${from.href.replace(/\/?$/, "/")}`,
      ),
      `${to}/${entry.name}`,
    );
  }
}
