// The texts every pre-tokenizer is checked on: each exercises a place where the presets differ
// (digit grouping, contractions and their case, scripts without spaces, punctuation runs, runs of
// whitespace and line breaks, case changes inside words, combining marks, emoji, code).
export const PRE_TOKENIZER_TEXTS: readonly string[] = [
  "Hello world! I'M here, they're   there's you'll WE'D it's.",
  'Numbers: 1 12 123 1234 12345 1234567 3.14159 1,000,000 ٣٤٥ ½ ²',
  'Line one\nline two\r\n\n\n\tindented\t\ttabs   \n  \n end  ',
  'CJK: 你好，世界。日本語のテキストとカタカナ。한국어 문장입니다!',
  'Punctuation!!! ??? ... --- (((nested))) [brackets] {braces} <tags> @#$%^&*',
  'Emoji 🦙🚀 and flags 🇫🇷 and ZWJ 👩‍💻 end',
  'def f(x):\n    return x**2  # square\n\nif __name__ == "__main__":\n\tprint(f(12))',
  'camelCaseWord HTTPServer iPhone McDonald\'S XMLHttpRequest ALLCAPS lower',
  'Ελληνικά Русский текст café naïve résumé e\u0301 cafe\u0301 Ångström',
  'ไทย ພາສາລາວ ខ្មែរ မြန်မာ עברית العربية हिन्दी',
  'Fullwidth：ＡＢＣ　ｘｙｚ！（１２３）“quotes” ‘single’ — dash… 、。',
  'nbsp\u00a0here\u0085next\u2028line\u3000ideo\ufeffbom \u200bzwsp',
  ' leading space and trailing ',
  '$var = array(1, 2, 3); // C++ <<vector>> x += y->z; a&&b||c',
  '<sentinel:12>IMGIMGABZ 2024-01-15T10:30:00Z user@example.com https://x.org/a?b=1',
];
