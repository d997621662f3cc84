/**
 * Synthesised audio kept in memory by text, voice and rate, so the greeting
 * and the fallback line of the second call onwards start with no
 * text-to-speech round trip. Pure.
 *
 * @module
 */

/** What makes two syntheses the same audio. */
export interface AudioCacheKey {
  /** The text-to-speech vendor. */
  provider: string;
  /** Its voice. */
  voice: string;
  /** The language asked for. */
  language: string;
  /** The call's rate: the PCM is stored as played. */
  sampleRate: number;
  /** The words. */
  text: string;
}

/** Limits of an {@linkcode AudioCache}. */
export interface AudioCacheOptions {
  /** Entries kept; the least recently used goes first. Default 64. */
  maxEntries?: number;
  /** PCM bytes kept in all. Default 32 MiB (about 35 minutes at 8 kHz). */
  maxBytes?: number;
}

function keyOf(key: AudioCacheKey): string {
  return JSON.stringify([
    key.provider,
    key.voice,
    key.language,
    key.sampleRate,
    key.text,
  ]);
}

/**
 * A least-recently-used map from {@linkcode AudioCacheKey} to PCM.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * const cache = new AudioCache();
 * const key = { provider: "deepgram", voice: "aura-2-thalia-en", language: "en-IN", sampleRate: 8000, text: "Hello!" };
 * cache.set(key, new Uint8Array(3200));
 * assertEquals(cache.get(key)?.length, 3200);
 * assertEquals(cache.get({ ...key, sampleRate: 16000 }), undefined);
 * assertEquals(cache.bytes, 3200);
 * ```
 */
export class AudioCache {
  #entries = new Map<string, Uint8Array>();
  #pending = new Map<string, Promise<Uint8Array | undefined>>();
  #bytes = 0;
  #maxEntries: number;
  #maxBytes: number;

  /** Creates an empty cache. */
  constructor(options: AudioCacheOptions = {}) {
    this.#maxEntries = options.maxEntries ?? 64;
    this.#maxBytes = options.maxBytes ?? 32 * 1024 * 1024;
  }

  /** Entries held. */
  get size(): number {
    return this.#entries.size;
  }

  /** PCM bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The PCM stored for `key`, marking it recently used. */
  get(key: AudioCacheKey): Uint8Array | undefined {
    const id = keyOf(key);
    const pcm = this.#entries.get(id);
    if (pcm === undefined) return undefined;
    this.#entries.delete(id);
    this.#entries.set(id, pcm);
    return pcm;
  }

  /**
   * The PCM for `key`: from the cache, else from `create` (once, however
   * many calls ask at the same time), kept when it gives audio.
   *
   * @example
   * ```ts
   * import { assertEquals } from "@std/assert";
   *
   * const cache = new AudioCache();
   * const key = { provider: "deepgram", voice: "aura-2-thalia-en", language: "en-IN", sampleRate: 8000, text: "Hello!" };
   * let syntheses = 0;
   * const synthesise = () => {
   *   syntheses++;
   *   return Promise.resolve(new Uint8Array(1600));
   * };
   * // Two calls asking at once share one synthesis; a third finds it kept.
   * const [first, second] = await Promise.all([
   *   cache.getOrCreate(key, synthesise),
   *   cache.getOrCreate(key, synthesise),
   * ]);
   * assertEquals(first, second);
   * assertEquals((await cache.getOrCreate(key, synthesise))?.length, 1600);
   * assertEquals(syntheses, 1);
   * ```
   */
  getOrCreate(
    key: AudioCacheKey,
    create: () => Promise<Uint8Array | undefined>,
  ): Promise<Uint8Array | undefined> {
    const cached = this.get(key);
    if (cached) return Promise.resolve(cached);
    const id = keyOf(key);
    let pending = this.#pending.get(id);
    if (pending === undefined) {
      pending = create().then((pcm) => {
        if (pcm && pcm.length > 0) this.set(key, pcm);
        return pcm;
      }).finally(() => this.#pending.delete(id));
      this.#pending.set(id, pending);
    }
    return pending;
  }

  /** Stores `pcm` for `key`; audio larger than the whole cache is not kept. */
  set(key: AudioCacheKey, pcm: Uint8Array): void {
    const id = keyOf(key);
    const old = this.#entries.get(id);
    if (old !== undefined) {
      this.#entries.delete(id);
      this.#bytes -= old.length;
    }
    if (pcm.length === 0 || pcm.length > this.#maxBytes) return;
    this.#entries.set(id, pcm);
    this.#bytes += pcm.length;
    for (const [oldest, audio] of this.#entries) {
      if (
        this.#entries.size <= this.#maxEntries && this.#bytes <= this.#maxBytes
      ) break;
      this.#entries.delete(oldest);
      this.#bytes -= audio.length;
    }
  }
}
