// Splits input text around the texts of special tokens before the tokenizer sees it, so that e.g.
// "<|im_start|>user" becomes the token <|im_start|> followed by the text "user". As in llama.cpp,
// longer token texts are matched first, user-defined tokens are always matched, and control (and
// unknown) tokens only when the caller asks to parse special tokens.
import { TokenType, type Vocabulary } from './vocabulary.js';

/** A piece of input: text still to tokenize, or the id of a special token found in it. */
export type Fragment = string | number;

interface SpecialText {
  text: string;
  id: number;
  /** Matched even when special-token parsing is off. */
  always: boolean;
}

export class SpecialTokenSplitter {
  private readonly specials: SpecialText[] = [];

  constructor(vocab: Vocabulary) {
    vocab.tokens.forEach((text, id) => {
      const type = vocab.types[id];
      if (text.length === 0) return;
      if (type === TokenType.Control || type === TokenType.Unknown || type === TokenType.UserDefined) {
        this.specials.push({ text, id, always: type === TokenType.UserDefined });
      }
    });
    this.specials.sort((a, b) => b.text.length - a.text.length || a.id - b.id);
  }

  split(text: string, parseSpecial: boolean): Fragment[] {
    let fragments: Fragment[] = text.length > 0 ? [text] : [];
    for (const special of this.specials) {
      if (!special.always && !parseSpecial) continue;
      if (!text.includes(special.text)) continue;
      const next: Fragment[] = [];
      for (const fragment of fragments) {
        if (typeof fragment === 'number') next.push(fragment);
        else splitOn(fragment, special, next);
      }
      fragments = next;
    }
    return fragments;
  }
}

function splitOn(text: string, special: SpecialText, out: Fragment[]): void {
  let start = 0;
  for (let at = text.indexOf(special.text); at >= 0; at = text.indexOf(special.text, start)) {
    if (at > start) out.push(text.slice(start, at));
    out.push(special.id);
    start = at + special.text.length;
  }
  if (start < text.length) out.push(text.slice(start));
}
