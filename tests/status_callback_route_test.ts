import { assertEquals } from "@std/assert";
import { loadConfig } from "../src/config.ts";
import { CallStore, openKv } from "../src/records/call_store.ts";
import { createApp } from "../src/server.ts";
import { FakeClock } from "./fakes/clock.ts";

Deno.test("the server asks status callbacks for STATUS_CALLBACK_TOKEN and limits them per address by STATUS_CALLBACK_RATE_LIMIT_PER_MIN", async () => {
  const store = new CallStore(await openKv(":memory:"), { ownsKv: true });
  const app = createApp(
    loadConfig({
      STATUS_CALLBACK_TOKEN: "tok-123",
      STATUS_CALLBACK_RATE_LIMIT_PER_MIN: "3",
    }),
    { services: { store } },
  );
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    app.handler,
  );
  const base = `http://127.0.0.1:${server.addr.port}/api/v1/exotel/status`;
  const post = async (url: string) => {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "CallSid=CA-route&Status=completed",
    });
    const body = await response.json();
    return [response.status, body.error?.code ?? body.status];
  };
  try {
    assertEquals(await post(base), [401, "unauthorized"]);
    assertEquals(await post(`${base}/tok-123`), [200, "completed"]);
    assertEquals(await post(`${base}?token=tok-123`), [200, "completed"]);
    assertEquals(await post(`${base}/tok-123`), [200, "completed"]);
    assertEquals(await post(`${base}/tok-123`), [429, "rate_limited"]);
  } finally {
    await server.shutdown();
    await store.close();
  }
});

Deno.test("the status callbacks' rate-limit window and DateUpdated check run on the server's clock", async () => {
  const store = new CallStore(await openKv(":memory:"), { ownsKv: true });
  // Callbacks dated 2025-01-01, received that day by the fake clock.
  const clock = new FakeClock(Date.UTC(2025, 0, 1, 10));
  const app = createApp(
    loadConfig({ STATUS_CALLBACK_RATE_LIMIT_PER_MIN: "1" }),
    { services: { store }, clock },
  );
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    app.handler,
  );
  const post = async (dateUpdated: string) => {
    const response = await fetch(
      `http://127.0.0.1:${server.addr.port}/api/v1/exotel/status`,
      {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: `CallSid=CA-clock&Status=completed&DateUpdated=${dateUpdated}`,
      },
    );
    await response.body?.cancel();
    return response.status;
  };
  try {
    assertEquals(await post("2025-01-01 10:00:00"), 200);
    assertEquals(await post("2025-01-01 10:00:00"), 429);
    await clock.advance(59_999);
    assertEquals(await post("2025-01-01 10:00:59"), 429);
    await clock.advance(1);
    assertEquals(await post("2025-01-01 10:01:00"), 200);
    assertEquals(
      (await store.getStatus("CA-clock"))?.dateUpdated,
      "2025-01-01 10:01:00",
      "plausible on the fake day, so kept",
    );
  } finally {
    await server.shutdown();
    await store.close();
  }
});

Deno.test("STATUS_CALLBACK_RATE_LIMIT_PER_MIN and INSTANCE_HEARTBEAT_S outside their ranges stop startup naming the variable", () => {
  for (
    const [name, value] of [
      ["STATUS_CALLBACK_RATE_LIMIT_PER_MIN", "0"],
      ["INSTANCE_HEARTBEAT_S", "0"],
      ["INSTANCE_HEARTBEAT_S", "ten"],
    ]
  ) {
    let message = "";
    try {
      loadConfig({ [name]: value });
    } catch (error) {
      message = (error as Error).message;
    }
    assertEquals(message.includes(name), true, `${name}=${value}: ${message}`);
  }
});
