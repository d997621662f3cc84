/** `src/http/ip_allowlist.ts`: CIDR ranges and single addresses, and `EXOTEL_IP_ALLOWLIST`. */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { InvalidCidrError, IpAllowList } from "../src/http/ip_allowlist.ts";
import { ConfigError, loadConfig } from "../src/config.ts";

Deno.test("IP allow-list matches IPv4 and IPv6 ranges and single addresses", () => {
  const list = new IpAllowList([
    "203.0.113.0/24",
    "198.51.100.7",
    "2001:db8::/32",
    "10.0.0.0/8",
  ]);
  for (
    const allowed of [
      "203.0.113.0",
      "203.0.113.255",
      "198.51.100.7",
      "2001:db8::1",
      "10.200.3.4",
      "::ffff:203.0.113.9",
    ]
  ) {
    assert(list.allows(allowed), allowed);
  }
  for (
    const refused of [
      "203.0.114.1",
      "198.51.100.8",
      "2001:db9::1",
      "::1",
      "127.0.0.1",
      "garbage",
      "",
    ]
  ) {
    assert(!list.allows(refused), refused);
  }
  assert(new IpAllowList(["0.0.0.0/0"]).allows("8.8.8.8"));
  assert(!new IpAllowList([]).allows("8.8.8.8"));
});

Deno.test("IP allow-list refuses ranges that do not parse", () => {
  for (
    const bad of [
      "300.1.1.1",
      "1.2.3.4/33",
      "1.2.3/24",
      "2001:db8::/129",
      "1::2::3",
      "a/b/c",
      "1.2.3.4/x",
    ]
  ) {
    assertThrows(() => new IpAllowList([bad]), InvalidCidrError, `"${bad}"`);
  }
  const error = assertThrows(
    () => loadConfig({ EXOTEL_IP_ALLOWLIST: "1.2.3.4/8, nope" }),
    ConfigError,
  );
  assertEquals(error.variable, "EXOTEL_IP_ALLOWLIST");
  assertEquals(
    loadConfig({ EXOTEL_IP_ALLOWLIST: " 1.2.3.0/24 ,, 2001:db8::/32 " })
      .ipAllowList,
    [
      "1.2.3.0/24",
      "2001:db8::/32",
    ],
  );
});
