/**
 * Cuts a language model's streamed text into pieces a text-to-speech vendor
 * can start on at once: whole sentences, or clauses once a piece is long
 * enough, so the first audio does not wait for a long sentence to end. Pure.
 *
 * @module
 */

/** Tuning of a {@linkcode SentenceSplitter}. */
export interface SentenceSplitterOptions {
  /**
   * A clause boundary (`,` `;` `:` `—`) ends the first piece of a reply once
   * it is at least this many characters long. Default 24.
   */
  firstClauseChars?: number;
  /** The same for every later piece. Default 60. */
  clauseChars?: number;
  /**
   * Text without any boundary is cut at a space once it grows past this
   * many characters, so no piece is longer. Default 220.
   */
  maxChars?: number;
}

/** Words that end with a full stop without ending the sentence. */
const ABBREVIATIONS = new Set([
  "mr",
  "mrs",
  "ms",
  "dr",
  "prof",
  "sr",
  "jr",
  "st",
  "vs",
  "etc",
  "e.g",
  "i.e",
  "approx",
  "rs",
  "inc",
  "ltd",
  "co",
  "mt",
  "a.m",
  "p.m",
]);

/** Sentence ends: Latin, Devanagari danda and double danda, CJK full stop, ellipsis. */
const SENTENCE_END = new Set([".", "!", "?", "…", "।", "॥", "。", "！", "？"]);
const CLAUSE_END = new Set([",", ";", ":", "—", "，", "；"]);
/** Closing marks that may follow a sentence end before the space. */
const CLOSERS = new Set(['"', "'", ")", "]", "”", "’", "»"]);

/**
 * Splits streamed text into speakable pieces.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * const splitter = new SentenceSplitter();
 * // A word's full stop is not waited on.
 * assertEquals(splitter.push("Sure."), ["Sure."]);
 * // "7." may be "7.30": held.
 * assertEquals(splitter.push(" Your table is booked for 7."), []);
 * assertEquals(splitter.push("30 pm. See"), ["Your table is booked for 7.30 pm."]);
 * assertEquals(splitter.flush(), ["See"]);
 * ```
 */
export class SentenceSplitter {
  #buffer = "";
  #pieces = 0;
  #firstClauseChars: number;
  #clauseChars: number;
  #maxChars: number;

  /** Creates a splitter; see {@linkcode SentenceSplitterOptions}. */
  constructor(options: SentenceSplitterOptions = {}) {
    this.#firstClauseChars = options.firstClauseChars ?? 24;
    this.#clauseChars = options.clauseChars ?? 60;
    this.#maxChars = options.maxChars ?? 220;
  }

  /** Adds a text delta and returns the pieces it completes. */
  push(text: string): string[] {
    this.#buffer += text;
    const pieces: string[] = [];
    while (true) {
      const cut = this.#findCut();
      if (cut === undefined) break;
      this.#emit(this.#buffer.slice(0, cut), pieces);
      this.#buffer = this.#buffer.slice(cut);
    }
    return pieces;
  }

  /** Ends the stream: returns what is left as a last piece, if it says anything. */
  flush(): string[] {
    const pieces: string[] = [];
    this.#emit(this.#buffer, pieces);
    this.#buffer = "";
    return pieces;
  }

  #emit(text: string, pieces: string[]): void {
    const piece = cleanForSpeech(text);
    if (!/[\p{L}\p{N}]/u.test(piece)) return;
    pieces.push(piece);
    this.#pieces++;
  }

  /** Where the buffer's first complete piece ends, if it holds one. */
  #findCut(): number | undefined {
    const text = this.#buffer;
    const clauseChars = this.#pieces === 0
      ? this.#firstClauseChars
      : this.#clauseChars;
    for (let i = 0; i < text.length; i++) {
      const char = text[i];
      if (char === "\n") {
        if (/[\p{L}\p{N}]/u.test(text.slice(0, i))) return i + 1;
        continue;
      }
      const sentence = SENTENCE_END.has(char);
      if (!sentence && !CLAUSE_END.has(char)) continue;
      let end = i + 1;
      while (
        end < text.length &&
        (SENTENCE_END.has(text[end]) || CLOSERS.has(text[end]))
      ) {
        end++;
      }
      if (end >= text.length) {
        // "!" and "?" end a sentence wherever they are, and so does a full
        // stop after a word that is no abbreviation: waiting for the next
        // token would hold the first words back by a token's time. A full
        // stop after a digit may yet be a decimal point, an ellipsis may go
        // on, and a comma may start a long clause.
        if (!sentence || char === "…") return undefined;
        return char !== "." || endsSentence(text.slice(0, i)) ? end : undefined;
      }
      if (!/\s/.test(text[end])) continue;
      if (sentence) {
        if (char === "." && isAbbreviation(text.slice(0, i))) continue;
        return end;
      }
      if (i + 1 >= clauseChars) return end;
    }
    if (text.length > this.#maxChars) {
      const space = text.lastIndexOf(" ", this.#maxChars);
      return space > 0 ? space + 1 : this.#maxChars;
    }
    return undefined;
  }
}

/**
 * Whether a full stop right after `before` ends the sentence whatever comes
 * next: it follows a word of two or more letters that is no abbreviation
 * (not a digit, an initial, or a dotted form like "e.g" or "U.S").
 */
function endsSentence(before: string): boolean {
  const word = /([\p{L}\p{M}.]+)$/u.exec(before)?.[1];
  if (word === undefined || word.length < 2 || word.includes(".")) return false;
  return !isAbbreviation(before);
}

/** Whether the word before a full stop at the end of `before` is an abbreviation or an initial. */
function isAbbreviation(before: string): boolean {
  const word = /([\p{L}.]+)$/u.exec(before)?.[1]?.toLowerCase();
  if (word === undefined) return false;
  // A single capital letter is an initial ("A. P. J. Abdul Kalam").
  if (/^\p{Lu}$/u.test(before.slice(-1)) && word.length === 1) return true;
  return ABBREVIATIONS.has(word);
}

/**
 * Removes what a model writes for screens but a voice cannot say: Markdown
 * emphasis, headings, bullets, code ticks and link targets; collapses
 * whitespace.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * assertEquals(
 *   cleanForSpeech("**Yes!** See [our menu](https://example.com)."),
 *   "Yes! See our menu.",
 * );
 * ```
 */
export function cleanForSpeech(text: string): string {
  return text
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/^\s*(?:#{1,6}\s+|[-*•]\s+|\d+[.)]\s+)/gm, "")
    .replace(/[*`~]+/g, "")
    // Underscores are emphasis only at a word's edge: "rahul_24@x.in" keeps its own.
    .replace(/(?<![\p{L}\p{N}])_+|_+(?![\p{L}\p{N}])/gu, "")
    .replace(/\s+/g, " ")
    .trim();
}
