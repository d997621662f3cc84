import { assertEquals, assertThrows } from "@std/assert";
import { ConfigError, loadConfig } from "../src/config.ts";

Deno.test("an empty environment gives the embedded defaults", () => {
  const config = loadConfig({});
  assertEquals(config.port, 3000);
  assertEquals(config.host, "0.0.0.0");
  assertEquals(config.wsPath, "/voicebot/ws");
  assertEquals(config.bot, "echo");
  assertEquals(config.chunkBytes, 3200);
  assertEquals(config.defaultSampleRate, 8000);
  assertEquals(config.tls, undefined);
  assertEquals(config.wsToken, undefined);
  assertEquals(config.exotelApi, undefined);
  assertEquals(config.logFormat, "json");
});

Deno.test("blank variables count as unset", () => {
  assertEquals(loadConfig({ PORT: "  ", BOT: "" }).port, 3000);
});

Deno.test("every variable is read", () => {
  const config = loadConfig({
    PORT: "8080",
    HOST: "127.0.0.1",
    TLS_CERT_FILE: "cert.pem",
    TLS_KEY_FILE: "key.pem",
    WS_PATH: "/ws",
    EXOTEL_WS_TOKEN: "tok",
    EXOTEL_WS_BASIC_AUTH: "key:se:cret",
    ADMIN_TOKEN: "admin",
    BOT: "ECHO",
    CHUNK_BYTES: "1600",
    PLAYOUT_LEAD_MS: "250",
    MAX_FRAME_BYTES: "65536",
    IDLE_TIMEOUT_S: "30",
    DEFAULT_SAMPLE_RATE: "16000",
    WEBHOOK_BASE_URL: "https://bot.example.com/",
    EXOTEL_API_KEY: "k",
    EXOTEL_API_TOKEN: "t",
    EXOTEL_ACCOUNT_SID: "acc",
    EXOTEL_CALLER_ID: "08047491899",
    EXOTEL_SUBDOMAIN: "api.in.exotel.com",
    EXOTEL_APP_ID: "123",
    EXOTEL_API_BASE_URL: "http://127.0.0.1:9999",
    EXOTEL_API_TIMEOUT_MS: "5000",
    LOG_LEVEL: "debug",
    LOG_FORMAT: "text",
  });
  assertEquals(config.port, 8080);
  assertEquals(config.host, "127.0.0.1");
  assertEquals(config.tls, { certFile: "cert.pem", keyFile: "key.pem" });
  assertEquals(config.wsPath, "/ws");
  assertEquals(config.wsToken, "tok");
  assertEquals(config.wsBasicAuth, { user: "key", password: "se:cret" });
  assertEquals(config.adminToken, "admin");
  assertEquals(config.bot, "echo");
  assertEquals(config.chunkBytes, 1600);
  assertEquals(config.playoutLeadMs, 250);
  assertEquals(config.maxFrameBytes, 65536);
  assertEquals(config.idleTimeoutS, 30);
  assertEquals(config.defaultSampleRate, 16000);
  assertEquals(config.publicBaseUrl, "https://bot.example.com");
  assertEquals(config.exotelApi, {
    apiKey: "k",
    apiToken: "t",
    accountSid: "acc",
    callerId: "08047491899",
    subdomain: "api.in.exotel.com",
    baseUrl: "http://127.0.0.1:9999",
    appId: "123",
    timeoutMs: 5000,
  });
  assertEquals(config.logLevel, "debug");
  assertEquals(config.logFormat, "text");
});

Deno.test("RENDER_EXTERNAL_URL is the public URL when WEBHOOK_BASE_URL is unset", () => {
  assertEquals(
    loadConfig({ RENDER_EXTERNAL_URL: "https://x.onrender.com" }).publicBaseUrl,
    "https://x.onrender.com",
  );
  assertEquals(
    loadConfig({
      RENDER_EXTERNAL_URL: "https://x.onrender.com",
      WEBHOOK_BASE_URL: "https://y.example",
    })
      .publicBaseUrl,
    "https://y.example",
  );
});

const bad: Array<[Record<string, string>, string, string]> = [
  [
    { PORT: "http" },
    "PORT",
    'Invalid PORT "http": expected a whole number from 0 to 65535',
  ],
  [{ PORT: "70000" }, "PORT", 'Invalid PORT "70000"'],
  [{ PORT: "-1" }, "PORT", 'Invalid PORT "-1"'],
  [
    { CHUNK_BYTES: "3000" },
    "CHUNK_BYTES",
    'Invalid CHUNK_BYTES "3000": expected a multiple of 320',
  ],
  [{ CHUNK_BYTES: "200000" }, "CHUNK_BYTES", 'Invalid CHUNK_BYTES "200000"'],
  [{ BOT: "parrot" }, "BOT", 'Invalid BOT "parrot": expected one of echo'],
  [
    { LOG_LEVEL: "loud" },
    "LOG_LEVEL",
    'Invalid LOG_LEVEL "loud": expected one of debug, info, warning, error',
  ],
  [
    { LOG_FORMAT: "xml" },
    "LOG_FORMAT",
    'Invalid LOG_FORMAT "xml": expected one of json, text',
  ],
  [
    { DEFAULT_SAMPLE_RATE: "11025" },
    "DEFAULT_SAMPLE_RATE",
    "expected 8000, 16000 or 24000",
  ],
  [{ WS_PATH: "voicebot" }, "WS_PATH", 'Invalid WS_PATH "voicebot"'],
  [{ TLS_CERT_FILE: "c.pem" }, "TLS_KEY_FILE", "Missing TLS_KEY_FILE"],
  [{ TLS_KEY_FILE: "k.pem" }, "TLS_CERT_FILE", "Missing TLS_CERT_FILE"],
  [
    { WEBHOOK_BASE_URL: "bot.example.com" },
    "WEBHOOK_BASE_URL",
    'Invalid WEBHOOK_BASE_URL "bot.example.com"',
  ],
  [
    { EXOTEL_WS_BASIC_AUTH: "nocolon" },
    "EXOTEL_WS_BASIC_AUTH",
    "expected user:password",
  ],
  [
    { EXOTEL_WS_BASIC_AUTH: ":pw" },
    "EXOTEL_WS_BASIC_AUTH",
    "expected user:password",
  ],
  [{ IDLE_TIMEOUT_S: "0" }, "IDLE_TIMEOUT_S", 'Invalid IDLE_TIMEOUT_S "0"'],
  [
    { EXOTEL_API_KEY: "k" },
    "EXOTEL_API_TOKEN",
    "Missing EXOTEL_API_TOKEN, EXOTEL_ACCOUNT_SID, EXOTEL_CALLER_ID",
  ],
];

for (const [env, variable, message] of bad) {
  Deno.test(`bad ${variable} stops startup with a message naming it: ${JSON.stringify(env)}`, () => {
    const error = assertThrows(() => loadConfig(env), ConfigError, message);
    assertEquals(error.variable, variable);
  });
}

Deno.test("a bad Basic auth value is never echoed in the error", () => {
  const error = assertThrows(
    () => loadConfig({ EXOTEL_WS_BASIC_AUTH: "supersecret" }),
    ConfigError,
  );
  assertEquals(error.message.includes("supersecret"), false);
});
