import { assertEquals } from "@std/assert";
import { spokenForm, spokenLanguage } from "../src/bots/agent/spoken_forms.ts";

/** [written by the model, said by the voice]. */
const EN_IN: [string, string][] = [
  // Amounts in the Indian system.
  ["That is ₹1,50,000.", "That is one lakh fifty thousand rupees."],
  ["2,50,00,000", "two crore fifty lakh"],
  ["₹2,50,00,000", "two crore fifty lakh rupees"],
  ["Rs. 500/-", "five hundred rupees"],
  ["Rs.500", "five hundred rupees"],
  ["Rs 750 only", "seven hundred fifty rupees only"],
  ["INR 75,000", "seventy-five thousand rupees"],
  ["₹1", "one rupee"],
  ["₹0.50", "zero rupees and fifty paise"],
  ["₹1,499.50", "one thousand four hundred ninety-nine rupees and fifty paise"],
  ["₹99.99", "ninety-nine rupees and ninety-nine paise"],
  ["₹10,00,00,000", "ten crore rupees"],
  ["₹150,000", "one lakh fifty thousand rupees"],
  [
    "₹1,23,45,678",
    "one crore twenty-three lakh forty-five thousand six hundred seventy-eight rupees",
  ],
  ["₹100,00,00,000", "one hundred crore rupees"],
  ["Rs 2.5 lakh", "two point five lakh rupees"],
  ["₹3 crore", "three crore rupees"],
  ["₹5 lakhs", "five lakh rupees"],
  ["₹15k", "fifteen thousand rupees"],
  ["₹500 rupees", "five hundred rupees"],
  [
    "It costs ₹1,00,000 and ₹25,000",
    "It costs one lakh rupees and twenty-five thousand rupees",
  ],
  ["150000", "one lakh fifty thousand"],
  ["2.5 lakh", "two point five lakh"],
  ["a 12,000 limit", "a twelve thousand limit"],
  // Phone numbers, digit by digit in groups.
  [
    "Call 98765 43210.",
    "Call nine eight seven six five, four three two one zero.",
  ],
  ["9876543210", "nine eight seven six five, four three two one zero"],
  [
    "+91 98765 43210",
    "plus nine one, nine eight seven six five, four three two one zero",
  ],
  [
    "+919876543210",
    "plus nine one, nine eight seven six five, four three two one zero",
  ],
  [
    "+91-98765-43210",
    "plus nine one, nine eight seven six five, four three two one zero",
  ],
  ["09876543210", "zero, nine eight seven six five, four three two one zero"],
  ["011-2345 6789", "zero one one, two three four five six seven eight nine"],
  ["080 4567 8901", "zero eight zero, four five six seven eight nine zero one"],
  ["(022) 2456 7890", "zero two two, two four five six seven eight nine zero"],
  ["1800 123 4567", "one eight zero zero, one two three, four five six seven"],
  // OTPs, PINs and codes.
  ["Your OTP is 482913.", "Your OTP is four eight two nine one three."],
  ["PIN: 4821", "PIN: four eight two one"],
  ["Use code 7734 to log in.", "Use code seven seven three four to log in."],
  ["PIN code 560001", "PIN code five six zero zero zero one"],
  [
    "the verification code is 0042",
    "the verification code is zero zero four two",
  ],
  [
    "account number 123456789012",
    "account number one two three four, five six seven eight, nine zero one two",
  ],
  ["Order ID 8812", "Order ID eight eight one two"],
  // Dates: DD/MM/YYYY first.
  ["03/12/2026", "3rd December 2026"],
  ["on 3/12/26", "on 3rd December 2026"],
  ["2026-12-03", "3rd December 2026"],
  ["31.01.2025", "31st January 2025"],
  ["22-02-2027", "22nd February 2027"],
  ["11/11/2026", "11th November 2026"],
  ["32/01/2026", "32/01/2026"],
  // Times.
  ["10:30 am", "ten thirty a m"],
  ["10:00 AM", "ten a m"],
  ["14:05", "two oh five p m"],
  ["9 pm", "nine p m"],
  ["12:00", "twelve noon"],
  ["00:30", "twelve thirty a m"],
  ["6.45 p.m.", "six forty-five p m."],
  ["7:00", "seven o'clock"],
  ["Come at 10:30 am.", "Come at ten thirty a m."],
  ["Open till 5 p.m. Then we close.", "Open till five p m. Then we close."],
  ["from 9 a.m. to noon", "from nine a m to noon"],
  ["25:00", "25:00"],
  // Percentages and ordinals.
  ["12.5%", "twelve point five percent"],
  ["100%", "one hundred percent"],
  ["8 %", "eight percent"],
  ["1st", "first"],
  ["22nd", "twenty-second"],
  ["the 3rd option", "the third option"],
  ["11th", "eleventh"],
  ["the 40th caller", "the fortieth caller"],
  ["101st", "one hundred first"],
  // E-mail addresses.
  ["rahul.sharma@gmail.com", "rahul dot sharma at gmail dot com"],
  [
    "support_24@exo-tel.in",
    "support underscore two four at exo hyphen tel dot in",
  ],
  [
    "Mail care+in@shop.co.in today",
    "Mail care plus in at shop dot co dot in today",
  ],
  // Abbreviations.
  ["Dr. Rao", "Doctor Rao"],
  ["Mr. Singh and Mrs. Singh", "Mister Singh and Missus Singh"],
  ["approx. 20 km", "approximately 20 kilometres"],
  ["apples, oranges etc.", "apples, oranges et cetera."],
  ["e.g. this", "for example this"],
  ["i.e. now", "that is now"],
  ["Flat No. 5", "Flat number 5"],
  ["No. I can't.", "No. I can't."],
  ["Acme Pvt. Ltd.", "Acme Private Limited."],
  // Left alone.
  ["version 1.5", "version 1.5"],
  ["2026", "2026"],
  ["Hello! How can I help you today?", "Hello! How can I help you today?"],
  ["", ""],
];

const HI_IN: [string, string][] = [
  ["कुल ₹1,50,000 है।", "कुल एक लाख पचास हज़ार रुपये है।"],
  ["₹2,50,00,000", "दो करोड़ पचास लाख रुपये"],
  ["2,50,00,000", "दो करोड़ पचास लाख"],
  ["₹1", "एक रुपया"],
  ["₹2.5 लाख", "ढाई लाख रुपये"],
  ["₹1.5 लाख", "डेढ़ लाख रुपये"],
  ["₹3.5 करोड़", "साढ़े तीन करोड़ रुपये"],
  ["रु. 500", "पाँच सौ रुपये"],
  ["Rs. 1,999", "एक हज़ार नौ सौ निन्यानवे रुपये"],
  ["₹99.50", "निन्यानवे रुपये पचास पैसे"],
  ["₹45,678", "पैंतालीस हज़ार छह सौ अठहत्तर रुपये"],
  ["98765 43210", "नौ आठ सात छह पाँच, चार तीन दो एक शून्य"],
  ["+91 98765 43210", "प्लस नौ एक, नौ आठ सात छह पाँच, चार तीन दो एक शून्य"],
  ["आपका ओटीपी 482913 है", "आपका ओटीपी चार आठ दो नौ एक तीन है"],
  ["पिन 0042", "पिन शून्य शून्य चार दो"],
  ["03/12/2026", "तीन दिसंबर दो हज़ार छब्बीस"],
  ["15/08/1947", "पंद्रह अगस्त एक हज़ार नौ सौ सैंतालीस"],
  ["10:30 am", "सुबह साढ़े दस बजे"],
  ["14:05", "दोपहर दो बजकर पाँच मिनट"],
  ["9:15 pm", "रात सवा नौ बजे"],
  ["5:45 am", "सुबह पौने छह बजे"],
  ["1:30 pm", "दोपहर डेढ़ बजे"],
  ["2:30 pm", "दोपहर ढाई बजे"],
  ["6 pm", "शाम छह बजे"],
  ["11:40", "ग्यारह बजकर चालीस मिनट"],
  ["12.5%", "बारह दशमलव पाँच प्रतिशत"],
  ["डॉ. शर्मा", "डॉक्टर शर्मा"],
  ["Dr. Rao", "डॉक्टर Rao"],
  ["७५,०००", "पचहत्तर हज़ार"],
  ["rahul@gmail.com", "rahul एट gmail डॉट com"],
  ["खाता संख्या 12345678", "खाता संख्या एक दो तीन चार, पाँच छह सात आठ"],
  ["1st", "पहला"],
  ["7th", "सातवाँ"],
  ["12th", "बारहवाँ"],
  ["37 लोग", "सैंतीस लोग"],
  ["2026 में", "दो हज़ार छब्बीस में"],
  ["99999", "निन्यानवे हज़ार नौ सौ निन्यानवे"],
  ["नमस्ते! मैं आपकी क्या मदद कर सकती हूँ?", "नमस्ते! मैं आपकी क्या मदद कर सकती हूँ?"],
];

for (const [written, said] of EN_IN) {
  Deno.test(`spoken form en-IN: ${JSON.stringify(written)}`, () => {
    assertEquals(spokenForm(written, { language: "en-IN" }), said);
  });
}

for (const [written, said] of HI_IN) {
  Deno.test(`spoken form hi-IN: ${JSON.stringify(written)}`, () => {
    assertEquals(spokenForm(written, { language: "hi-IN" }), said);
  });
}

Deno.test("Hindi number words cover 1 to 99 with no gaps or repeats", () => {
  const said = Array.from(
    { length: 99 },
    (_, i) => spokenForm(`${i + 1} लोग`, { language: "hi-IN" }),
  );
  assertEquals(new Set(said).size, 99);
  assertEquals(said[20], "इक्कीस लोग");
  assertEquals(said[48], "उनचास लोग");
  assertEquals(said[78], "उनासी लोग");
  assertEquals(said[98], "निन्यानवे लोग");
});

Deno.test("spoken forms are on for Indian English and Hindi by default, per the mode otherwise", () => {
  assertEquals(spokenLanguage("auto", "en-IN"), "en");
  assertEquals(spokenLanguage("auto", "hi-IN"), "hi");
  assertEquals(spokenLanguage("auto", "hi"), "hi");
  assertEquals(spokenLanguage("auto", "en-US"), undefined);
  assertEquals(spokenLanguage("auto", "ta-IN"), undefined);
  assertEquals(spokenLanguage("on", "en-GB"), "en");
  assertEquals(spokenLanguage("off", "en-IN"), undefined);
  assertEquals(spokenLanguage("off", "hi-IN"), undefined);
});
