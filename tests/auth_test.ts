/**
 * `src/http/auth.ts` on its own: which `Authorization` headers a protected
 * endpoint accepts for bearer, basic, both or no credentials.
 */
import { assertEquals } from "@std/assert";
import { type Credentials, isAuthorized, isOpen } from "../src/http/auth.ts";

const TOKEN = "s3cret-token";
const BASIC = { user: "exotel-key", password: "exotel:token" };

function base64(text: string): string {
  return new TextEncoder().encode(text).toBase64();
}

function basic(userPassword: string): string {
  return `Basic ${base64(userPassword)}`;
}

Deno.test("isOpen: only credentials with neither a bearer token nor a basic pair are open", async (t) => {
  const cases: [string, Credentials, boolean][] = [
    ["none", {}, true],
    ["bearer", { bearer: TOKEN }, false],
    ["basic", { basic: BASIC }, false],
    ["both", { bearer: TOKEN, basic: BASIC }, false],
  ];
  for (const [name, credentials, open] of cases) {
    await t.step(name, () => assertEquals(isOpen(credentials), open));
  }
});

Deno.test("isAuthorized: open credentials accept any header, even none", async (t) => {
  for (const header of [null, "", "Bearer anything", basic("a:b"), "junk"]) {
    await t.step(String(header), () => {
      assertEquals(isAuthorized(header, {}), true);
    });
  }
});

Deno.test("isAuthorized: a bearer token is accepted only exactly, under a case-insensitive scheme", async (t) => {
  const credentials: Credentials = { bearer: TOKEN };
  const cases: [string | null, boolean][] = [
    [`Bearer ${TOKEN}`, true],
    [`bearer ${TOKEN}`, true],
    [`BEARER ${TOKEN}`, true],
    [`Bearer ${TOKEN}  `, true],
    [null, false],
    ["", false],
    ["Bearer", false],
    ["Bearer ", false],
    [TOKEN, false],
    [`Bearer ${TOKEN}x`, false],
    [`Bearer ${TOKEN.slice(0, -1)}`, false],
    [`Bearer ${TOKEN.toUpperCase()}`, false],
    [`Token ${TOKEN}`, false],
    // A basic header carrying the token is not a bearer token.
    [basic(TOKEN), false],
  ];
  for (const [header, accepted] of cases) {
    await t.step(`${JSON.stringify(header)} → ${accepted}`, () => {
      assertEquals(isAuthorized(header, credentials), accepted);
    });
  }
});

Deno.test("isAuthorized: basic credentials need the user and the whole password, colons included", async (t) => {
  const credentials: Credentials = { basic: BASIC };
  const cases: [string, string | null, boolean][] = [
    ["the pair", basic("exotel-key:exotel:token"), true],
    ["lower-case scheme", `basic ${base64("exotel-key:exotel:token")}`, true],
    ["no header", null, false],
    ["wrong password", basic("exotel-key:exotel"), false],
    ["wrong user", basic("other:exotel:token"), false],
    ["password only", basic("exotel:token"), false],
    ["user only", basic("exotel-key"), false],
    ["not base64", "Basic %%%not-base64%%%", false],
    ["empty value", "Basic ", false],
    ["the pair as a bearer token", "Bearer exotel-key:exotel:token", false],
  ];
  for (const [name, header, accepted] of cases) {
    await t.step(name, () => {
      assertEquals(isAuthorized(header, credentials), accepted);
    });
  }
});

Deno.test("isAuthorized: with both configured, either scheme is accepted on its own terms", async (t) => {
  const credentials: Credentials = { bearer: TOKEN, basic: BASIC };
  const cases: [string, string, boolean][] = [
    ["bearer", `Bearer ${TOKEN}`, true],
    ["basic", basic("exotel-key:exotel:token"), true],
    ["the token as a basic pair", basic(TOKEN), false],
    ["the pair as a bearer token", "Bearer exotel-key:exotel:token", false],
  ];
  for (const [name, header, accepted] of cases) {
    await t.step(name, () => {
      assertEquals(isAuthorized(header, credentials), accepted);
    });
  }
});

Deno.test("isAuthorized: only the configured scheme counts", async (t) => {
  await t.step("basic sent, only bearer configured", () => {
    assertEquals(
      isAuthorized(basic("exotel-key:exotel:token"), { bearer: TOKEN }),
      false,
    );
  });
  await t.step("bearer sent, only basic configured", () => {
    assertEquals(isAuthorized(`Bearer ${TOKEN}`, { basic: BASIC }), false);
  });
});
