/** `src/http/rate_limit.ts`: fixed-window counts per key, in bounded memory. */
import { assertEquals } from "@std/assert";
import { RateLimiter } from "../src/http/rate_limit.ts";

Deno.test("rate limiter allows the limit per window, then refuses until the window ends", () => {
  const limiter = new RateLimiter({ limit: 3, windowMs: 1000 });
  assertEquals([0, 1, 2, 3].map((t) => limiter.hit("a", t)), [
    true,
    true,
    true,
    false,
  ]);
  assertEquals(limiter.hit("b", 4), true, "keys are counted apart");
  assertEquals(limiter.isLimited("a", 500), true);
  assertEquals(limiter.retryAfterS("a", 500), 1);
  assertEquals(limiter.hit("a", 1000), true, "a new window starts");
  assertEquals(limiter.isLimited("a", 1000), false);
});

Deno.test("rate limiter memory stays bounded under many keys", () => {
  const limiter = new RateLimiter({ limit: 1, windowMs: 60_000, maxKeys: 100 });
  for (let i = 0; i < 10_000; i++) limiter.hit(`10.0.${i >> 8}.${i & 255}`, i);
  // The newest key is still tracked; the oldest were forgotten.
  assertEquals(limiter.hit("10.0.39.15", 10_000), false);
  assertEquals(limiter.hit("10.0.0.0", 10_001), true);
});
