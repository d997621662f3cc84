/**
 * Spoken forms for Indian voices: what the model writes ("₹1,50,000 by
 * 03/12/2026, OTP 4821") turned into what a voice should say ("one lakh fifty
 * thousand rupees by 3rd December 2026, OTP four eight two one"), in Indian
 * English (`en-IN`) or Hindi (`hi-IN`). Pure and table-driven: amounts in
 * lakh and crore, phone numbers and codes digit by digit in groups, dates
 * (DD/MM/YYYY first), times, percentages, ordinals, e-mail addresses and
 * common abbreviations.
 *
 * @module
 */

/** `AGENT_SPOKEN_FORMS`: `auto` is on for `en-IN` and `hi-IN`. */
export type SpokenFormsMode = "auto" | "on" | "off";

/** The accepted values of `AGENT_SPOKEN_FORMS`. */
export const SPOKEN_FORMS_MODES: readonly SpokenFormsMode[] = [
  "auto",
  "on",
  "off",
];

/** The two sets of spoken forms. */
export type SpokenLanguage = "en" | "hi";

/** Options of {@linkcode spokenForm}. */
export interface SpokenFormOptions {
  /** BCP 47 language of the reply: Hindi (`hi…`) gets Hindi forms, anything else Indian English. */
  language: string;
}

/**
 * Which spoken forms a reply in `language` gets under `mode`, or `undefined`
 * for none: `auto` covers Indian English (`en-IN`) and Hindi (`hi`, `hi-IN`);
 * `on` gives Hindi forms to Hindi and Indian English forms to every other
 * language.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * assertEquals(spokenLanguage("auto", "en-IN"), "en");
 * assertEquals(spokenLanguage("auto", "en-US"), undefined);
 * assertEquals(spokenLanguage("on", "en-US"), "en");
 * ```
 */
export function spokenLanguage(
  mode: SpokenFormsMode,
  language: string,
): SpokenLanguage | undefined {
  if (mode === "off") return undefined;
  const [primary = "", ...rest] = language.toLowerCase().split("-");
  if (primary === "hi") return "hi";
  if (mode === "on") return "en";
  return primary === "en" && rest.includes("in") ? "en" : undefined;
}

/**
 * What the voice should say for `text`, written by the model in `language`.
 * Text with nothing to rewrite comes back unchanged.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * assertEquals(
 *   spokenForm("That is ₹1,50,000.", { language: "en-IN" }),
 *   "That is one lakh fifty thousand rupees.",
 * );
 * assertEquals(
 *   spokenForm("कुल ₹1,50,000 है।", { language: "hi-IN" }),
 *   "कुल एक लाख पचास हज़ार रुपये है।",
 * );
 * ```
 */
export function spokenForm(text: string, options: SpokenFormOptions): string {
  const words = options.language.toLowerCase().startsWith("hi") ? HI : EN;
  let segments: Segment[] = [{ text: toAsciiDigits(text), done: false }];
  for (const rule of RULES) {
    segments = segments.flatMap((segment) =>
      segment.done ? [segment] : applyRule(segment.text, rule, words)
    );
  }
  return segments.map((segment) => segment.text).join("");
}

/** A stretch of text, `done` once a rule has rewritten it. */
interface Segment {
  text: string;
  done: boolean;
}

/** One rewrite: a pattern (global, Unicode) and what a match becomes, or `undefined` to leave it. */
interface Rule {
  pattern: RegExp;
  say(match: RegExpExecArray, words: Words): string | undefined;
}

function applyRule(text: string, rule: Rule, words: Words): Segment[] {
  const out: Segment[] = [];
  let at = 0;
  rule.pattern.lastIndex = 0;
  for (const match of text.matchAll(rule.pattern)) {
    const said = rule.say(match, words);
    if (said === undefined) continue;
    if (match.index > at) {
      out.push({ text: text.slice(at, match.index), done: false });
    }
    out.push({ text: said, done: true });
    at = match.index + match[0].length;
  }
  if (at < text.length) out.push({ text: text.slice(at), done: false });
  return out;
}

/** Devanagari digits (०–९) read as ASCII, so every rule sees one kind. */
function toAsciiDigits(text: string): string {
  return text.replace(
    /[०-९]/g,
    (digit) => String(digit.charCodeAt(0) - 0x966),
  );
}

// ---------------------------------------------------------------- words

/** Everything language-specific. */
interface Words {
  /** Cardinal in the Indian system (lakh, crore). */
  number(n: number): string;
  /** "1st" and "first": ordinal in words. */
  ordinal(n: number): string;
  /** One digit, for phone numbers and codes. */
  digits: readonly string[];
  plus: string;
  point: string;
  percent: string;
  rupees(n: number): string;
  paise: string;
  /** Amount with a scale word written after it ("2.5 lakh"). */
  scaled(amount: string, scale: Scale): string;
  date(day: number, month: number, year: number): string;
  time(hour: number, minute: number, half: "am" | "pm" | undefined): string;
  at: string;
  dot: string;
  underscore: string;
  /** "No." before digits. */
  numberWord: string;
  hyphen: string;
  abbreviations: ReadonlyMap<string, string>;
}

type Scale = "thousand" | "lakh" | "crore";

const EN_ONES = [
  "zero",
  "one",
  "two",
  "three",
  "four",
  "five",
  "six",
  "seven",
  "eight",
  "nine",
  "ten",
  "eleven",
  "twelve",
  "thirteen",
  "fourteen",
  "fifteen",
  "sixteen",
  "seventeen",
  "eighteen",
  "nineteen",
];
const EN_TENS = [
  "",
  "",
  "twenty",
  "thirty",
  "forty",
  "fifty",
  "sixty",
  "seventy",
  "eighty",
  "ninety",
];
const EN_MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];

function enBelowHundred(n: number): string {
  if (n < 20) return EN_ONES[n];
  const tens = EN_TENS[Math.floor(n / 10)];
  return n % 10 === 0 ? tens : `${tens}-${EN_ONES[n % 10]}`;
}

/** Cardinal words in the Indian system; `scale` names the units of 1, 100, 1000, 1e5, 1e7. */
function indianNumber(
  n: number,
  belowHundred: (n: number) => string,
  scale: { hundred: string; thousand: string; lakh: string; crore: string },
): string {
  if (n < 100) return belowHundred(n);
  const parts: string[] = [];
  const crore = Math.floor(n / 1e7);
  let rest = n % 1e7;
  if (crore > 0) {
    parts.push(`${indianNumber(crore, belowHundred, scale)} ${scale.crore}`);
  }
  const units: [number, string][] = [
    [1e5, scale.lakh],
    [1e3, scale.thousand],
    [1e2, scale.hundred],
  ];
  for (const [size, name] of units) {
    const count = Math.floor(rest / size);
    rest %= size;
    if (count > 0) parts.push(`${belowHundred(count)} ${name}`);
  }
  if (rest > 0) parts.push(belowHundred(rest));
  return parts.join(" ");
}

function enNumber(n: number): string {
  return indianNumber(n, enBelowHundred, {
    hundred: "hundred",
    thousand: "thousand",
    lakh: "lakh",
    crore: "crore",
  });
}

const EN_ORDINAL_ENDINGS: Record<string, string> = {
  one: "first",
  two: "second",
  three: "third",
  five: "fifth",
  eight: "eighth",
  nine: "ninth",
  twelve: "twelfth",
};

function enOrdinal(n: number): string {
  const cardinal = enNumber(n);
  const last = /([a-z]+)$/.exec(cardinal)?.[1] ?? "";
  const ending = EN_ORDINAL_ENDINGS[last] ??
    (last.endsWith("y") ? `${last.slice(0, -1)}ieth` : `${last}th`);
  return cardinal.slice(0, cardinal.length - last.length) + ending;
}

/** "1st", "22nd": how dates are written for an Indian English voice. */
function enShortOrdinal(n: number): string {
  const tens = n % 100;
  if (tens >= 11 && tens <= 13) return `${n}th`;
  return `${n}${["th", "st", "nd", "rd"][n % 10] ?? "th"}`;
}

function enTime(
  hour: number,
  minute: number,
  half: "am" | "pm" | undefined,
): string {
  let suffix = half;
  let h = hour;
  if (half === undefined && (hour > 12 || hour === 0)) {
    suffix = hour >= 12 ? "pm" : "am";
  }
  if (h > 12) h -= 12;
  if (h === 0) h = 12;
  if (hour === 12 && minute === 0 && half === undefined) return "twelve noon";
  const minutes = minute === 0
    ? ""
    : minute < 10
    ? ` oh ${EN_ONES[minute]}`
    : ` ${enBelowHundred(minute)}`;
  const spokenSuffix = suffix === undefined
    ? ""
    : ` ${suffix.split("").join(" ")}`;
  const oClock = minute === 0 && suffix === undefined ? " o'clock" : "";
  return `${enNumber(h)}${minutes}${oClock}${spokenSuffix}`;
}

const EN: Words = {
  number: enNumber,
  ordinal: enOrdinal,
  digits: EN_ONES.slice(0, 10),
  plus: "plus",
  point: "point",
  percent: "percent",
  rupees: (n) => n === 1 ? "rupee" : "rupees",
  paise: "paise",
  scaled: (amount, scale) => `${decimalWords(amount, EN)} ${scale}`,
  date: (day, month, year) =>
    `${enShortOrdinal(day)} ${EN_MONTHS[month - 1]} ${year}`,
  time: enTime,
  at: "at",
  dot: "dot",
  underscore: "underscore",
  numberWord: "number",
  hyphen: "hyphen",
  abbreviations: new Map([
    ["dr.", "Doctor"],
    ["mr.", "Mister"],
    ["mrs.", "Missus"],
    ["ms.", "Miss"],
    ["prof.", "Professor"],
    ["approx.", "approximately"],
    ["etc.", "et cetera"],
    ["e.g.", "for example"],
    ["i.e.", "that is"],
    ["vs.", "versus"],
    ["ltd.", "Limited"],
    ["pvt.", "Private"],
    ["govt.", "Government"],
    ["dept.", "department"],
    ["jr.", "Junior"],
    ["sr.", "Senior"],
    ["a/c", "account"],
    ["hrs", "hours"],
    ["mins", "minutes"],
    ["km", "kilometres"],
    ["kg", "kilograms"],
  ]),
};

/** Hindi number words 1–99 are irregular: the whole table. */
const HI_BELOW_HUNDRED = [
  "शून्य",
  "एक",
  "दो",
  "तीन",
  "चार",
  "पाँच",
  "छह",
  "सात",
  "आठ",
  "नौ",
  "दस",
  "ग्यारह",
  "बारह",
  "तेरह",
  "चौदह",
  "पंद्रह",
  "सोलह",
  "सत्रह",
  "अठारह",
  "उन्नीस",
  "बीस",
  "इक्कीस",
  "बाईस",
  "तेईस",
  "चौबीस",
  "पच्चीस",
  "छब्बीस",
  "सत्ताईस",
  "अट्ठाईस",
  "उनतीस",
  "तीस",
  "इकतीस",
  "बत्तीस",
  "तैंतीस",
  "चौंतीस",
  "पैंतीस",
  "छत्तीस",
  "सैंतीस",
  "अड़तीस",
  "उनतालीस",
  "चालीस",
  "इकतालीस",
  "बयालीस",
  "तैंतालीस",
  "चवालीस",
  "पैंतालीस",
  "छियालीस",
  "सैंतालीस",
  "अड़तालीस",
  "उनचास",
  "पचास",
  "इक्यावन",
  "बावन",
  "तिरेपन",
  "चौवन",
  "पचपन",
  "छप्पन",
  "सत्तावन",
  "अट्ठावन",
  "उनसठ",
  "साठ",
  "इकसठ",
  "बासठ",
  "तिरेसठ",
  "चौंसठ",
  "पैंसठ",
  "छियासठ",
  "सड़सठ",
  "अड़सठ",
  "उनहत्तर",
  "सत्तर",
  "इकहत्तर",
  "बहत्तर",
  "तिहत्तर",
  "चौहत्तर",
  "पचहत्तर",
  "छिहत्तर",
  "सतहत्तर",
  "अठहत्तर",
  "उनासी",
  "अस्सी",
  "इक्यासी",
  "बयासी",
  "तिरासी",
  "चौरासी",
  "पचासी",
  "छियासी",
  "सत्तासी",
  "अट्ठासी",
  "नवासी",
  "नब्बे",
  "इक्यानवे",
  "बानवे",
  "तिरानवे",
  "चौरानवे",
  "पचानवे",
  "छियानवे",
  "सत्तानवे",
  "अट्ठानवे",
  "निन्यानवे",
];
const HI_MONTHS = [
  "जनवरी",
  "फ़रवरी",
  "मार्च",
  "अप्रैल",
  "मई",
  "जून",
  "जुलाई",
  "अगस्त",
  "सितंबर",
  "अक्टूबर",
  "नवंबर",
  "दिसंबर",
];
const HI_ORDINALS = [
  "",
  "पहला",
  "दूसरा",
  "तीसरा",
  "चौथा",
  "पाँचवाँ",
  "छठा",
  "सातवाँ",
  "आठवाँ",
  "नौवाँ",
];

function hiNumber(n: number): string {
  return indianNumber(n, (k) => HI_BELOW_HUNDRED[k], {
    hundred: "सौ",
    thousand: "हज़ार",
    lakh: "लाख",
    crore: "करोड़",
  });
}

/** "1.5", "2.5", "3.5": डेढ़, ढाई, साढ़े तीन, as Hindi speakers say them. */
function hiHalf(amount: string): string | undefined {
  const match = /^(\d+)\.5$/.exec(amount);
  if (!match) return undefined;
  const whole = Number(match[1]);
  if (whole === 1) return "डेढ़";
  if (whole === 2) return "ढाई";
  return whole > 2 && whole < 100 ? `साढ़े ${hiNumber(whole)}` : undefined;
}

function hiHour(hour12: number): string {
  return hiNumber(hour12);
}

function hiTime(
  hour: number,
  minute: number,
  half: "am" | "pm" | undefined,
): string {
  const hour24 = half === "pm" && hour < 12
    ? hour + 12
    : half === "am" && hour === 12
    ? 0
    : hour;
  const hour12 = hour24 % 12 === 0 ? 12 : hour24 % 12;
  const next12 = hour12 % 12 + 1;
  const knowsPeriod = half !== undefined || hour > 12 || hour === 0;
  const period = !knowsPeriod
    ? ""
    : hour24 < 4
    ? "रात "
    : hour24 < 12
    ? "सुबह "
    : hour24 < 16
    ? "दोपहर "
    : hour24 < 20
    ? "शाम "
    : "रात ";
  let said: string;
  if (minute === 0) said = `${hiHour(hour12)} बजे`;
  else if (minute === 15) said = `सवा ${hiHour(hour12)} बजे`;
  else if (minute === 30) {
    said = hour12 === 1
      ? "डेढ़ बजे"
      : hour12 === 2
      ? "ढाई बजे"
      : `साढ़े ${hiHour(hour12)} बजे`;
  } else if (minute === 45) {
    said = next12 === 2 ? "पौने दो बजे" : `पौने ${hiHour(next12)} बजे`;
  } else said = `${hiHour(hour12)} बजकर ${hiNumber(minute)} मिनट`;
  return period + said;
}

const HI: Words = {
  number: hiNumber,
  ordinal: (n) => HI_ORDINALS[n] ?? `${hiNumber(n)}वाँ`,
  digits: HI_BELOW_HUNDRED.slice(0, 10),
  plus: "प्लस",
  point: "दशमलव",
  percent: "प्रतिशत",
  rupees: (n) => n === 1 ? "रुपया" : "रुपये",
  paise: "पैसे",
  scaled: (amount, scale) => {
    const name = { thousand: "हज़ार", lakh: "लाख", crore: "करोड़" }[scale];
    return `${hiHalf(amount) ?? decimalWords(amount, HI)} ${name}`;
  },
  date: (day, month, year) =>
    `${hiNumber(day)} ${HI_MONTHS[month - 1]} ${hiNumber(year)}`,
  time: hiTime,
  at: "एट",
  dot: "डॉट",
  underscore: "अंडरस्कोर",
  numberWord: "नंबर",
  hyphen: "हाइफ़न",
  abbreviations: new Map([
    ["dr.", "डॉक्टर"],
    ["डॉ.", "डॉक्टर"],
    ["mr.", "मिस्टर"],
    ["mrs.", "मिसेज़"],
    ["ms.", "मिस"],
    ["prof.", "प्रोफ़ेसर"],
    ["approx.", "लगभग"],
    ["etc.", "वगैरह"],
    ["e.g.", "जैसे"],
    ["i.e.", "यानी"],
    ["vs.", "बनाम"],
    ["a/c", "अकाउंट"],
    ["km", "किलोमीटर"],
    ["kg", "किलो"],
  ]),
};

// ---------------------------------------------------------------- helpers

/** "12.5" in words: the whole part as a number, the decimals digit by digit. */
function decimalWords(amount: string, words: Words): string {
  const [whole, fraction] = amount.split(".");
  const said = words.number(Number(whole));
  if (!fraction) return said;
  const digits = [...fraction].map((d) => words.digits[Number(d)]).join(" ");
  return `${said} ${words.point} ${digits}`;
}

/** Digits one by one, groups separated by a comma so the voice pauses. */
function spellGroups(groups: readonly string[], words: Words): string {
  return groups
    .filter((group) => group.length > 0)
    .map((group) => [...group].map((d) => words.digits[Number(d)]).join(" "))
    .join(", ");
}

/** "123456789" as ["1234", "5678", "9"]: how long identifiers are read out. */
function fours(digits: string): string[] {
  return digits.match(/\d{1,4}/g) ?? [];
}

/** Digits with separators ("1,50,000", "150,000") as a number, or `undefined` when it is not one. */
function groupedNumber(text: string): number | undefined {
  const plain = text.replace(/,/g, "");
  if (!/^\d+$/.test(plain)) return undefined;
  const n = Number(plain);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Not a letter, digit or joining mark before or after: a whole token. */
const BEFORE = String.raw`(?<![\p{L}\p{N}\p{M}_@.])`;
const AFTER = String.raw`(?![\p{L}\p{N}\p{M}_]|[.,]\d)`;

function rule(source: string, say: Rule["say"], flags = "gu"): Rule {
  return { pattern: new RegExp(source, flags), say };
}

const SCALES: Record<string, Scale> = {
  k: "thousand",
  thousand: "thousand",
  "हज़ार": "thousand",
  "हजार": "thousand",
  l: "lakh",
  lakh: "lakh",
  lakhs: "lakh",
  lac: "lakh",
  lacs: "lakh",
  "लाख": "lakh",
  cr: "crore",
  crore: "crore",
  crores: "crore",
  "करोड़": "crore",
};

const NUMBER = String.raw`\d{1,3}(?:,\d{2})*(?:,\d{3})|\d+`;

// ---------------------------------------------------------------- rules

/** In order: earlier rules claim their text first. */
const RULES: readonly Rule[] = [
  // E-mail addresses: every symbol said, digits one by one.
  rule(
    String
      .raw`${BEFORE}[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`,
    ([address], words) =>
      address.replace(/[.@_+-]|\d+/g, (part) => {
        if (/\d/.test(part)) return ` ${spellGroups([part], words)} `;
        const name = {
          ".": words.dot,
          "@": words.at,
          "_": words.underscore,
          "-": words.hyphen,
          "+": words.plus,
        }[part];
        return ` ${name} `;
      }).replace(/\s+/g, " ").trim(),
  ),
  // Amounts: ₹, Rs., INR, रु. before the number; lakh/crore/k after it.
  rule(
    String
      .raw`(?:₹|\bRs\.?|\bINR|रु\.?)\s?(${NUMBER})(\.\d{1,2})?(?:\s?(k|thousand|lakhs?|lacs?|l|crores?|cr|हज़ार|हजार|लाख|करोड़)${AFTER})?(?:\s?(?:/-|rupees|रुपये))?`,
    (match, words) => {
      const [, whole, fraction, scaleWord] = match;
      const n = groupedNumber(whole);
      if (n === undefined) return undefined;
      if (scaleWord) {
        const scale = SCALES[scaleWord.toLowerCase()];
        return `${words.scaled(`${n}${fraction ?? ""}`, scale)} ${
          words.rupees(2)
        }`;
      }
      const rupees = `${words.number(n)} ${words.rupees(n)}`;
      const paise = fraction ? Number(fraction.slice(1).padEnd(2, "0")) : 0;
      if (paise === 0) return rupees;
      const and = words === EN ? " and" : "";
      return `${rupees}${and} ${words.number(paise)} ${words.paise}`;
    },
    "giu",
  ),
  // "No. 5": number, only before digits ("No." alone is an answer).
  rule(
    String.raw`${BEFORE}No\.\s?(?=\d)`,
    (_match, words) => `${words.numberWord} `,
    "giu",
  ),
  // Codes: OTP, PIN, code, passcode followed (within a few words) by 3–8 digits.
  rule(
    String
      .raw`((?<![\p{L}\p{M}])(?:OTP|PIN|passcode|pass code|code|CVV|ओटीपी|पिन|कोड)(?![\p{L}\p{M}])[^\d\n]{0,24}?)(\d{3,8})${AFTER}`,
    ([, context, code], words) =>
      `${context}${spellGroups([code], words).replace(/,/g, "")}`,
    "giu",
  ),
  // Phone numbers: +91 mobiles, bare mobiles, toll-free, landlines with an STD code.
  rule(
    String.raw`${BEFORE}(?:\+91[\s-]?|0)?([6-9]\d{4})[\s-]?(\d{5})${AFTER}`,
    (match, words) => {
      const prefix = match[0].startsWith("+")
        ? `${words.plus} ${spellGroups(["91"], words)}, `
        : match[0].startsWith("0")
        ? `${words.digits[0]}, `
        : "";
      return prefix + spellGroups([match[1], match[2]], words);
    },
  ),
  rule(
    String.raw`${BEFORE}(1800|1860)[\s-]?(\d{3})[\s-]?(\d{3,4})${AFTER}`,
    ([, a, b, c], words) => spellGroups([a, b, c], words),
  ),
  rule(
    String
      .raw`${BEFORE}(?:\+91[\s-]?|\(?(0))(\d{2,4})\)?[\s-](\d{3,4})[\s-]?(\d{4})${AFTER}`,
    ([whole, zero, std, a, b], words) => {
      const plus = whole.startsWith("+")
        ? `${words.plus} ${spellGroups(["91"], words)}, `
        : "";
      return plus + spellGroups([(zero ?? "") + std, a + b], words);
    },
  ),
  // Account, order, booking and reference numbers: digit by digit in fours.
  rule(
    String
      .raw`((?<![\p{L}\p{M}])(?:account|a/c|acct|order|booking|reference|ref|ticket|policy|PNR|ID|customer|consumer|UTR|transaction|खाता|खाते|ऑर्डर|बुकिंग)(?![\p{L}\p{M}])[^\d\n]{0,24}?)(\d{4,20})${AFTER}`,
    ([, context, digits], words) =>
      `${context}${spellGroups(fours(digits), words)}`,
    "giu",
  ),
  // Dates: DD/MM/YYYY (the Indian default), DD-MM-YYYY, DD.MM.YYYY, and ISO YYYY-MM-DD.
  rule(
    String.raw`${BEFORE}(\d{4})-(\d{1,2})-(\d{1,2})${AFTER}`,
    ([, year, month, day], words) =>
      validDate(Number(day), Number(month))
        ? words.date(Number(day), Number(month), Number(year))
        : undefined,
  ),
  rule(
    String.raw`${BEFORE}(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})${AFTER}`,
    ([, day, , month, year], words) => {
      if (!validDate(Number(day), Number(month))) return undefined;
      const fullYear = year.length === 2 ? 2000 + Number(year) : Number(year);
      return words.date(Number(day), Number(month), fullYear);
    },
  ),
  // Times: 10:30 am, 10.30 p.m., 14:05.
  rule(
    String
      .raw`${BEFORE}(\d{1,2})[:.](\d{2})(?:\s?([ap])\.?\s?m\.?${AFTER})?(?:\s?(?:hrs|hours)\b)?`,
    (match, words) => {
      const [whole, hourText, minuteText, half] = match;
      const hour = Number(hourText);
      const minute = Number(minuteText);
      // "10.30" with no am/pm is a decimal, not a time.
      if (whole.includes(".") && half === undefined) return undefined;
      if (hour > 23 || minute > 59) return undefined;
      if (half !== undefined && (hour === 0 || hour > 12)) return undefined;
      const said = half === undefined
        ? undefined
        : (half.toLowerCase() === "a" ? "am" : "pm") as "am" | "pm";
      return keepFullStop(match, words.time(hour, minute, said));
    },
    "giu",
  ),
  rule(
    String.raw`${BEFORE}(\d{1,2})\s?([ap])\.?\s?m\.?${AFTER}`,
    (match, words) => {
      const hour = Number(match[1]);
      if (hour === 0 || hour > 12) return undefined;
      const half = match[2].toLowerCase() === "a" ? "am" : "pm";
      return keepFullStop(match, words.time(hour, 0, half));
    },
    "giu",
  ),
  // Percentages.
  rule(
    String.raw`${BEFORE}(\d+(?:\.\d+)?)\s?%`,
    ([, amount], words) => `${decimalWords(amount, words)} ${words.percent}`,
  ),
  // Ordinals.
  rule(
    String.raw`${BEFORE}(\d+)(st|nd|rd|th)${AFTER}`,
    ([, n], words) => words.ordinal(Number(n)),
    "giu",
  ),
  // Amounts written with a scale but no currency sign: "2.5 lakh", "3 crore".
  rule(
    String
      .raw`${BEFORE}(\d+(?:\.\d+)?)\s?(lakhs?|lacs?|crores?|लाख|करोड़)${AFTER}`,
    ([, amount, scaleWord], words) =>
      words.scaled(amount, SCALES[scaleWord.toLowerCase()]),
    "giu",
  ),
  // Numbers grouped with commas ("2,50,00,000") and plain ones up to seven
  // digits are quantities, said in the Indian system; longer plain ones are
  // identifiers, said in groups of four.
  rule(
    String.raw`${BEFORE}(\d{1,3}(?:,\d{2})*,\d{3}|\d{5,7})${AFTER}`,
    ([digits], words) => {
      const n = groupedNumber(digits);
      return n === undefined ? undefined : words.number(n);
    },
  ),
  rule(
    String.raw`${BEFORE}\d{8,}${AFTER}`,
    ([digits], words) => spellGroups(fours(digits), words),
  ),
  // A Hindi voice gets every remaining number in Hindi words (years too:
  // 2026 is "दो हज़ार छब्बीस"); an English one reads short numbers well.
  rule(
    String.raw`${BEFORE}\d{1,4}(?:\.\d+)?${AFTER}`,
    ([digits], words) => words === HI ? decimalWords(digits, HI) : undefined,
  ),
  // Abbreviations, whole words only; one that ends the text keeps its full stop.
  rule(
    String
      .raw`${BEFORE}(?:[\p{L}\p{M}]+\.(?:\p{L}\.)?|a/c|hrs|mins|km|kg)(?![\p{L}\p{N}])`,
    (match, words) => {
      const said = words.abbreviations.get(match[0].toLowerCase());
      if (said === undefined || !match[0].endsWith(".")) return said;
      const after = match.input.slice(match.index + match[0].length);
      return /^\s*$/.test(after) ? `${said}.` : said;
    },
    "giu",
  ),
];

/**
 * "p.m." that ends a sentence also ends it: when the match took a full stop
 * the sentence needs, the spoken form gets it back.
 */
function keepFullStop(match: RegExpExecArray, said: string): string {
  if (!match[0].endsWith(".")) return said;
  const after = match.input.slice(match.index + match[0].length);
  return /^(?:\s*$|\s+\p{Lu})/u.test(after) ? `${said}.` : said;
}

function validDate(day: number, month: number): boolean {
  return day >= 1 && day <= 31 && month >= 1 && month <= 12;
}
