/** Which address a request came from, behind zero or more trusted proxies. */
import { assertEquals, assertThrows } from "@std/assert";
import {
  clientAddress,
  trustedForwardedValue,
} from "../src/http/client_address.ts";
import { ConfigError, loadConfig } from "../src/config.ts";

const PEER = "127.0.0.1";

function addressOf(forwardedFor: string | undefined, trustedHops: number) {
  const headers = new Headers();
  if (forwardedFor !== undefined) headers.set("x-forwarded-for", forwardedFor);
  return clientAddress(headers, PEER, { trustedHops });
}

Deno.test("with no trusted proxy, X-Forwarded-For is ignored", () => {
  assertEquals(addressOf("8.8.8.8", 0), PEER);
  assertEquals(addressOf(undefined, 0), PEER);
});

Deno.test("one trusted proxy: the right-most entry, whatever the client wrote to its left", () => {
  assertEquals(addressOf("10.1.2.3, 8.8.8.8", 1), "8.8.8.8");
  assertEquals(addressOf("8.8.8.8", 1), "8.8.8.8");
  assertEquals(addressOf("a, b, c,198.51.100.7", 1), "198.51.100.7");
  assertEquals(addressOf(undefined, 1), PEER, "no header: the socket's peer");
});

Deno.test("several trusted proxies: the entry that many from the right, or the left-most of a shorter chain", () => {
  const chain = "10.1.2.3, 198.51.100.7, 172.16.0.4";
  assertEquals(addressOf(chain, 2), "198.51.100.7");
  assertEquals(addressOf(chain, 3), "10.1.2.3");
  assertEquals(addressOf("198.51.100.7, 172.16.0.4", 3), "198.51.100.7");
  assertEquals(trustedForwardedValue("x, y", 5), "x");
});

Deno.test("a forwarded entry that is no IP address falls back to the socket's peer; ports and brackets are dropped", () => {
  assertEquals(addressOf("8.8.8.8, unknown", 1), PEER);
  assertEquals(addressOf("8.8.8.8, ", 1), PEER);
  assertEquals(addressOf("300.1.1.1", 1), PEER);
  assertEquals(addressOf("{sessionId}", 1), PEER);
  assertEquals(addressOf("203.0.113.9:51234", 1), "203.0.113.9");
  assertEquals(addressOf("[2001:DB8::1]:443", 1), "2001:db8::1");
  assertEquals(addressOf("2001:db8::1", 1), "2001:db8::1");
  assertEquals(addressOf("::ffff:203.0.113.9", 1), "::ffff:203.0.113.9");
});

Deno.test("TRUST_PROXY accepts true, false and a number of proxies, and names itself otherwise", () => {
  const hops = (value: string) => loadConfig({ TRUST_PROXY: value });
  assertEquals([hops("false").trustProxy, hops("false").trustedProxyHops], [
    false,
    0,
  ]);
  assertEquals([hops("TRUE").trustProxy, hops("true").trustedProxyHops], [
    true,
    1,
  ]);
  assertEquals(hops("2").trustedProxyHops, 2);
  assertEquals(hops("0").trustProxy, false);
  assertEquals(loadConfig({}).trustedProxyHops, 0);
  for (const bad of ["yes", "-1", "11", "1.5"]) {
    const error = assertThrows(
      () => hops(bad),
      ConfigError,
      `Invalid TRUST_PROXY "${bad}"`,
    );
    assertEquals(error.variable, "TRUST_PROXY");
  }
});

Deno.test("a bad EXOTEL_CALLER_ID stops startup naming the variable", () => {
  const error = assertThrows(
    () =>
      loadConfig({
        EXOTEL_API_KEY: "k",
        EXOTEL_API_TOKEN: "t",
        EXOTEL_ACCOUNT_SID: "a",
        EXOTEL_CALLER_ID: "0801234567",
      }),
    ConfigError,
    'Invalid EXOTEL_CALLER_ID "0801234567"',
  );
  assertEquals(error.variable, "EXOTEL_CALLER_ID");
});
