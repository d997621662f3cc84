/** The voicebot upgrade guard: each refusal, its order, and how it is counted. */
import { assertEquals } from "@std/assert";
import { SessionRegistry } from "../src/call/registry.ts";
import { loadConfig } from "../src/config.ts";
import { type App, createApp } from "../src/server.ts";
import { makeSession } from "./fakes/session.ts";

const info = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 },
} as Deno.ServeHandlerInfo;

const UPGRADE = {
  upgrade: "websocket",
  connection: "Upgrade",
  "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
  "sec-websocket-version": "13",
};

interface RefusalCase {
  name: string;
  env?: Record<string, string>;
  /** Prepares the app before the request. */
  setUp?(app: App): void;
  /** A full registry, for MAX_SESSIONS. */
  full?: boolean;
  query?: string;
  headers?: Record<string, string>;
  status: number;
  code: string;
  /** Failed authentications counted for the voicebot socket. */
  authFailures?: number;
}

const CASES: RefusalCase[] = [
  {
    name: "a drain refuses with 503 draining",
    setUp: (app) => app.startDraining(),
    status: 503,
    code: "draining",
  },
  {
    name: "an address outside EXOTEL_IP_ALLOWLIST gets 403",
    env: { EXOTEL_IP_ALLOWLIST: "203.0.113.0/24" },
    status: 403,
    code: "forbidden",
  },
  {
    name: "MAX_SESSIONS live calls refuse the next with 503",
    env: { MAX_SESSIONS: "1" },
    full: true,
    status: 503,
    code: "server_full",
  },
  {
    name: "a plain GET gets 426",
    headers: {},
    status: 426,
    code: "upgrade_required",
  },
  {
    name: "wrong credentials get 401",
    env: { EXOTEL_WS_TOKEN: "tok" },
    headers: { ...UPGRADE, authorization: "Bearer wrong" },
    status: 401,
    code: "unauthorized",
    authFailures: 1,
  },
  {
    name: "an unknown console token gets 401",
    query: "?console_token=nope&sample-rate=8000&call_id=CA1",
    status: 401,
    code: "unauthorized",
    authFailures: 1,
  },
  {
    name: "a malformed handshake gets 400 after the credentials pass",
    headers: { upgrade: "websocket", connection: "Upgrade" },
    status: 400,
    code: "invalid_upgrade",
  },
  {
    name: "the drain is decided first, before credentials",
    env: { EXOTEL_WS_TOKEN: "tok" },
    setUp: (app) => app.startDraining(),
    headers: { ...UPGRADE, authorization: "Bearer wrong" },
    status: 503,
    code: "draining",
  },
];

async function metricsOf(app: App): Promise<string> {
  const response = await app.handler(
    new Request("http://localhost:3000/metrics"),
    info,
  );
  return await response.text();
}

function sample(text: string, series: string): number {
  const line = text.split("\n").find((line) => line.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

for (const refusal of CASES) {
  Deno.test(`voicebot upgrade guard: ${refusal.name}, counted once by its code`, async () => {
    const registry = new SessionRegistry();
    if (refusal.full) registry.add(makeSession());
    const app = createApp(loadConfig(refusal.env ?? {}), { registry });
    refusal.setUp?.(app);
    const response = await app.handler(
      new Request(`http://localhost:3000/voicebot/ws${refusal.query ?? ""}`, {
        headers: refusal.headers ?? UPGRADE,
      }),
      info,
    );
    const body = await response.json();
    assertEquals([response.status, body.error.code], [
      refusal.status,
      refusal.code,
    ]);
    const metrics = await metricsOf(app);
    assertEquals(
      sample(
        metrics,
        `exovoice_upgrades_refused_total{code="${refusal.code}"}`,
      ),
      1,
    );
    assertEquals(
      sample(metrics, 'exovoice_auth_failures_total{endpoint="voicebot"}'),
      refusal.authFailures ?? 0,
    );
    assertEquals(
      sample(metrics, 'exovoice_auth_failures_total{endpoint="admin"}'),
      0,
    );
  });
}

Deno.test("voicebot upgrade guard: past AUTH_FAILURE_LIMIT_PER_MIN a failure gets 429, counted as too_many_auth_failures", async () => {
  const app = createApp(
    loadConfig({ EXOTEL_WS_TOKEN: "tok", AUTH_FAILURE_LIMIT_PER_MIN: "1" }),
  );
  const statuses = [];
  for (let i = 0; i < 2; i++) {
    const response = await app.handler(
      new Request("http://localhost:3000/voicebot/ws", {
        headers: { ...UPGRADE, authorization: "Bearer wrong" },
      }),
      info,
    );
    statuses.push(response.status);
    await response.body?.cancel();
  }
  assertEquals(statuses, [401, 429]);
  const metrics = await metricsOf(app);
  assertEquals(
    [
      sample(metrics, 'exovoice_upgrades_refused_total{code="unauthorized"}'),
      sample(
        metrics,
        'exovoice_upgrades_refused_total{code="too_many_auth_failures"}',
      ),
      sample(metrics, 'exovoice_auth_failures_total{endpoint="voicebot"}'),
    ],
    [1, 1, 2],
  );
});
