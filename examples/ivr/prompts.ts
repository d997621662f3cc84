/**
 * What the IVR example says, by prompt name. The WAV files next to this
 * file (8 kHz, 16-bit mono) are these texts as spoken by espeak-ng; run
 * `make_prompts.ts` after changing one.
 *
 * @module
 */

/** Each prompt's text, by the name of its file (`<name>.wav`). */
export const PROMPT_TEXTS = {
  welcome: "Welcome to the exovoice demo line.",
  menu:
    "For our opening hours, press 1. To check an order, press 2. To hear this menu again, press 0. To end the call, press star.",
  hours:
    "We are open from nine in the morning to six in the evening, Monday to Saturday.",
  order_prompt: "Please enter your order number, then press hash.",
  order_intro: "Order number",
  order_shipped: "is on its way, and will reach you tomorrow.",
  order_delivered: "was delivered yesterday.",
  order_unknown: "could not be found. Please check the number and try again.",
  invalid: "Sorry, that is not an option.",
  no_input: "Sorry, I did not hear a choice.",
  goodbye: "Thank you for calling. Goodbye!",
  digit_0: "zero",
  digit_1: "one",
  digit_2: "two",
  digit_3: "three",
  digit_4: "four",
  digit_5: "five",
  digit_6: "six",
  digit_7: "seven",
  digit_8: "eight",
  digit_9: "nine",
} as const;

/** The name of a prompt. */
export type PromptName = keyof typeof PROMPT_TEXTS;
