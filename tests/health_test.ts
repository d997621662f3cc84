import { assertEquals, assertStringIncludes } from "@std/assert";
import { loadConfig } from "../src/config.ts";
import { startServer } from "../src/server.ts";

interface HealthView {
  status: string;
  problems: string[];
}

/** Reads `/health` until `done` holds, for up to 20 s; answers the last reading and its HTTP status. */
async function waitForHealth(
  port: number,
  done: (health: HealthView) => boolean,
): Promise<{ code: number; health: HealthView }> {
  let last = { code: 0, health: { status: "", problems: [] as string[] } };
  for (let tries = 0; tries < 200; tries++) {
    const response = await fetch(`http://127.0.0.1:${port}/health`);
    last = { code: response.status, health: await response.json() };
    if (done(last.health)) return last;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return last;
}

function serverEnv(kvPath: string, instanceId: string) {
  return loadConfig({
    HOST: "127.0.0.1",
    PORT: "0",
    KV_PATH: kvPath,
    INSTANCE_ID: instanceId,
    INSTANCE_HEARTBEAT_S: "1",
  });
}

Deno.test("/health reports degraded, still 200, once the KV file is deleted under the running server", async () => {
  const dir = await Deno.makeTempDir();
  const kvPath = `${dir}/calls.kv`;
  await using server = await startServer(serverEnv(kvPath, "vm-health"));
  const before = await waitForHealth(server.addr.port, () => true);
  assertEquals([before.code, before.health.status], [200, "ok"]);
  assertEquals(before.health.problems, []);
  await Deno.remove(kvPath);
  const after = await waitForHealth(
    server.addr.port,
    (health) => health.status === "degraded",
  );
  assertEquals([after.code, after.health.status], [200, "degraded"]);
  assertStringIncludes(after.health.problems.join(" "), "was deleted");
  await server.shutdown();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("two servers with the same INSTANCE_ID on one KV both report it in /health", async () => {
  const dir = await Deno.makeTempDir();
  const kvPath = `${dir}/calls.kv`;
  await using one = await startServer(serverEnv(kvPath, "vm-twin"));
  await using two = await startServer(serverEnv(kvPath, "vm-twin"));
  for (const server of [one, two]) {
    const { code, health } = await waitForHealth(
      server.addr.port,
      (health) => health.status === "degraded",
    );
    assertEquals([code, health.status], [200, "degraded"]);
    assertStringIncludes(health.problems.join(" "), "INSTANCE_ID");
  }
  await one.shutdown();
  await two.shutdown();
  await Deno.remove(dir, { recursive: true });
});
