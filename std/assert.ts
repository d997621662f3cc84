/**
 * Typed re-exports of the `@std/assert` functions this project uses.
 *
 * JSR is out of reach from our machines, so the std code comes from its npm
 * republication `deno-std`, which ships no type declarations. These signatures
 * match the JSR package's own.
 *
 * @module
 */
import * as untyped from "deno-std/assert/mod.js";

/** Constructor of any class, for {@linkcode assertInstanceOf}. */
export type AnyConstructor = abstract new (...args: never[]) => unknown;

/** Asserts that `expr` is truthy. */
export const assert: (expr: unknown, msg?: string) => asserts expr =
  untyped.assert;
/** Asserts that `expr` is falsy. */
export const assertFalse: (expr: unknown, msg?: string) => void =
  untyped.assertFalse;
/** Asserts deep equality of `actual` and `expected`. */
export const assertEquals: <T>(actual: T, expected: T, msg?: string) => void =
  untyped.assertEquals;
/** Asserts deep inequality of `actual` and `expected`. */
export const assertNotEquals: <T>(
  actual: T,
  expected: T,
  msg?: string,
) => void = untyped.assertNotEquals;
/** Asserts `Object.is` equality of `actual` and `expected`. */
export const assertStrictEquals: <T>(
  actual: unknown,
  expected: T,
  msg?: string,
) => asserts actual is T = untyped.assertStrictEquals;
/** Asserts that `actual` is neither `null` nor `undefined`. */
export const assertExists: <T>(
  actual: T,
  msg?: string,
) => asserts actual is NonNullable<T> = untyped.assertExists;
/** Asserts that `actual` contains `expected`. */
export const assertStringIncludes: (
  actual: string,
  expected: string,
  msg?: string,
) => void = untyped.assertStringIncludes;
/** Asserts that `actual` matches `expected`. */
export const assertMatch: (
  actual: string,
  expected: RegExp,
  msg?: string,
) => void = untyped.assertMatch;
/** Asserts that `actual` is greater than `expected`. */
export const assertGreater: <T>(actual: T, expected: T, msg?: string) => void =
  untyped.assertGreater;
/** Asserts that `actual` is an object matching the properties of `expected`. */
export const assertObjectMatch: (
  actual: Record<PropertyKey, unknown>,
  expected: Record<PropertyKey, unknown>,
  msg?: string,
) => void = untyped.assertObjectMatch;
/** Asserts that `actual` is an instance of `expectedType`. */
export const assertInstanceOf: <T extends AnyConstructor>(
  actual: unknown,
  expectedType: T,
  msg?: string,
) => asserts actual is InstanceType<T> = untyped.assertInstanceOf;
/** Asserts that `fn` throws, optionally an error of `ErrorClass` whose message includes `msgIncludes`. */
export const assertThrows: <E extends Error = Error>(
  fn: () => unknown,
  ErrorClass?: abstract new (...args: never[]) => E,
  msgIncludes?: string,
  msg?: string,
) => E = untyped.assertThrows;
/** Asserts that `fn` rejects, optionally with an error of `ErrorClass` whose message includes `msgIncludes`. */
export const assertRejects: <E extends Error = Error>(
  fn: () => PromiseLike<unknown>,
  ErrorClass?: abstract new (...args: never[]) => E,
  msgIncludes?: string,
  msg?: string,
) => Promise<E> = untyped.assertRejects;
/** Fails the test with `msg`. */
export const fail: (msg?: string) => never = untyped.fail;
