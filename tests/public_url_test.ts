/**
 * `src/http/public_url.ts` on its own: the public base URL taken from
 * configuration, the request, or trusted proxies' forwarding headers, and the
 * voicebot socket URL built on it within Exotel's custom-parameter limits.
 */
import { assertEquals, assertThrows } from "@std/assert";
import {
  CustomParametersError,
  InvalidHostError,
  MAX_CUSTOM_QUERY_CHARS,
  publicBaseUrl,
  voicebotUrl,
  type VoicebotUrlOptions,
} from "../src/http/public_url.ts";

interface BaseCase {
  name: string;
  url: string;
  headers?: Record<string, string>;
  configured?: string;
  hops?: number;
  expected: string;
}

const BASE_CASES: BaseCase[] = [
  {
    name: "the request's own origin",
    url: "http://10.0.0.5:3000/exotel/connect",
    expected: "http://10.0.0.5:3000/",
  },
  {
    name: "the Host header over the URL's host",
    url: "http://10.0.0.5:3000/x",
    headers: { host: "bot.example.com:8443" },
    expected: "http://bot.example.com:8443/",
  },
  {
    name: "configured wins over the request and its headers",
    url: "http://10.0.0.5:3000/x",
    headers: { "x-forwarded-host": "evil.example", host: "other.example" },
    configured: "https://bot.example.com/base",
    hops: 1,
    expected: "https://bot.example.com/base",
  },
  {
    name: "forwarding headers ignored without trusted proxies",
    url: "http://10.0.0.5:3000/x",
    headers: {
      "x-forwarded-proto": "https",
      "x-forwarded-host": "bot.example.com",
    },
    expected: "http://10.0.0.5:3000/",
  },
  {
    name: "one trusted proxy: its proto and host",
    url: "http://10.0.0.5:3000/x",
    headers: {
      "x-forwarded-proto": "https",
      "x-forwarded-host": "bot.example.com",
    },
    hops: 1,
    expected: "https://bot.example.com/",
  },
  {
    name: "one trusted proxy: the client's own claims to the left are skipped",
    url: "http://10.0.0.5:3000/x",
    headers: {
      "x-forwarded-proto": "http, https",
      "x-forwarded-host": "evil.example, bot.example.com",
    },
    hops: 1,
    expected: "https://bot.example.com/",
  },
  {
    name: "two trusted proxies: the outermost one's values",
    url: "http://10.0.0.5:3000/x",
    headers: {
      "x-forwarded-proto": "http, https, http",
      "x-forwarded-host": "evil.example, bot.example.com, lb.internal",
    },
    hops: 2,
    expected: "https://bot.example.com/",
  },
  {
    name: "a proto that is not http(s) or ws(s) keeps the request's",
    url: "http://10.0.0.5:3000/x",
    headers: { "x-forwarded-proto": "gopher" },
    hops: 1,
    expected: "http://10.0.0.5:3000/",
  },
  {
    name: "proto matched without regard to case",
    url: "http://10.0.0.5:3000/x",
    headers: { "x-forwarded-proto": "HTTPS" },
    hops: 1,
    expected: "https://10.0.0.5:3000/",
  },
  {
    name: "no forwarded host: the Host header",
    url: "http://10.0.0.5:3000/x",
    headers: { "x-forwarded-proto": "https", host: "bot.example.com" },
    hops: 1,
    expected: "https://bot.example.com/",
  },
  {
    name: "an IPv6 literal with a port",
    url: "http://[::1]:3000/x",
    expected: "http://[::1]:3000/",
  },
];

Deno.test("publicBaseUrl: where the public address comes from", async (t) => {
  for (const { name, url, headers, configured, hops, expected } of BASE_CASES) {
    await t.step(name, () => {
      const request = new Request(url, { headers });
      const base = publicBaseUrl(request, {
        configured,
        trustedProxyHops: hops,
      });
      assertEquals(base.href, expected);
    });
  }
});

Deno.test("publicBaseUrl: a host that is not a host name or address is a 400 quoting it", async (t) => {
  const hosts = [
    "evil.example/path",
    "evil.example@other",
    "bad host",
    "host:port",
    "-leading-dash.example",
    "[not-an-ip]",
    `${"a".repeat(64)}.example`,
  ];
  for (const host of hosts) {
    await t.step(host, () => {
      const request = new Request("http://10.0.0.5:3000/x", {
        headers: { "x-forwarded-host": host },
      });
      const error = assertThrows(
        () => publicBaseUrl(request, { trustedProxyHops: 1 }),
        InvalidHostError,
        `Invalid host "${host}"`,
      );
      assertEquals(error.status, 400);
      assertEquals(error.code, "invalid_host");
    });
  }
});

Deno.test("publicBaseUrl: the quoted bad host is cut to 100 characters", () => {
  const host = `bad host ${"x".repeat(500)}`;
  const request = new Request("http://10.0.0.5:3000/x", {
    headers: { "x-forwarded-host": host },
  });
  const error = assertThrows(
    () => publicBaseUrl(request, { trustedProxyHops: 1 }),
    InvalidHostError,
  );
  assertEquals(error.message.includes(host.slice(0, 100)), true);
  assertEquals(error.message.includes(host.slice(0, 101)), false);
});

const SOCKET: VoicebotUrlOptions = { path: "/voicebot/ws", sampleRate: 8000 };

Deno.test("voicebotUrl: scheme, call id, rate, agent and custom parameters in order", async (t) => {
  const cases: [string, string, VoicebotUrlOptions, string][] = [
    [
      "http base gives ws",
      "http://10.0.0.5:3000",
      SOCKET,
      "ws://10.0.0.5:3000/voicebot/ws?sample-rate=8000",
    ],
    [
      "https base gives wss",
      "https://bot.example.com",
      { ...SOCKET, callId: "CA1" },
      "wss://bot.example.com/voicebot/ws?call_id=CA1&sample-rate=8000",
    ],
    [
      "wss base stays wss",
      "wss://bot.example.com",
      { ...SOCKET, sampleRate: 16000 },
      "wss://bot.example.com/voicebot/ws?sample-rate=16000",
    ],
    [
      "agent after the rate",
      "https://bot.example.com",
      { ...SOCKET, callId: "CA1", agent: "clinic" },
      "wss://bot.example.com/voicebot/ws?call_id=CA1&sample-rate=8000&agent=clinic",
    ],
    [
      "custom parameters last, encoded",
      "https://bot.example.com",
      { ...SOCKET, customParameters: { order: "A 1", lang: "hi&en" } },
      "wss://bot.example.com/voicebot/ws?sample-rate=8000&order=A+1&lang=hi%26en",
    ],
    [
      "three custom parameters are allowed",
      "https://bot.example.com",
      { ...SOCKET, customParameters: { a: "1", b: "2", c: "3" } },
      "wss://bot.example.com/voicebot/ws?sample-rate=8000&a=1&b=2&c=3",
    ],
    [
      "a base path is replaced by the socket path",
      "https://bot.example.com/some/base",
      SOCKET,
      "wss://bot.example.com/voicebot/ws?sample-rate=8000",
    ],
  ];
  for (const [name, base, options, expected] of cases) {
    await t.step(name, () => {
      assertEquals(voicebotUrl(new URL(base), options), expected);
    });
  }
});

Deno.test("voicebotUrl: custom parameters past Exotel's limits are refused, quoting what was given", async (t) => {
  const base = new URL("https://bot.example.com");
  await t.step("four parameters", () => {
    assertThrows(
      () =>
        voicebotUrl(base, {
          ...SOCKET,
          customParameters: { a: "1", b: "2", c: "3", d: "4" },
        }),
      CustomParametersError,
      'Too many custom parameters "4": Exotel passes at most 3',
    );
  });
  await t.step("one character past the length limit", () => {
    // "v=" plus the value: exactly one character over.
    const value = "x".repeat(MAX_CUSTOM_QUERY_CHARS - 1);
    assertThrows(
      () => voicebotUrl(base, { ...SOCKET, customParameters: { v: value } }),
      CustomParametersError,
      `(${
        MAX_CUSTOM_QUERY_CHARS + 1
      } characters): Exotel passes at most ${MAX_CUSTOM_QUERY_CHARS}`,
    );
  });
  await t.step("exactly at the length limit is allowed", () => {
    const value = "x".repeat(MAX_CUSTOM_QUERY_CHARS - 2);
    const url = voicebotUrl(base, {
      ...SOCKET,
      customParameters: { v: value },
    });
    assertEquals(new URL(url).searchParams.get("v"), value);
  });
});
