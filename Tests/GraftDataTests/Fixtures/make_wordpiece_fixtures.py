"""Writes wordpiece_cases.json: Hugging Face BertTokenizer's output on tricky strings, for WordPieceTests.swift.

Run with the venv that has `transformers` (pip install transformers):
    .cache/torch-venv/bin/python Tests/GraftDataTests/Fixtures/make_wordpiece_fixtures.py [vocab.txt]
The vocabulary defaults to $GRAFT_ASSETS/minilm/vocab.txt (GRAFT_ASSETS defaults to <repo>/.cache/assets), the
MiniLM (bert-base-uncased) WordPiece vocabulary that launch/assets.sh fetches.
"""
import hashlib
import json
import os
import sys

import tokenizers
import transformers
from transformers import BertTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"

# Single texts: each exercises one step of BERT's normaliser, pre-tokenizer or WordPiece.
SINGLES = [
    "A man is eating food.",
    "Héllo, naïve world! unaffable tokenization",
    "Crème brûlée à la façon de Zoë — déjà vu",
    "ÀÉÎÕÜ ñ Ångström Øresund STRASSE Straße ẞ",
    "e\u0301 vs \u00e9, A\u030a vs \u00c5, \u1e9b\u0323",
    "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇ text",
    "ΣΟΦΟΣ ΟΔΥΣΣΕΥΣ σοφός",
    "İstanbul ıi Iı ǅungla",
    "東京タワーは高い",
    "我爱北京天安门。abc中文def",
    "カタカナとひらがな、漢字。",
    "한국어 텍스트",
    "I love 🍕 and 🥰!! 👨‍👩‍👧 family 👍🏽",
    "Wait...what?!?! (really) [sic] {ok} <tag> a--b",
    "$100.00 #hashtag @user ~tilde ^caret `tick` |pipe| \\back _under_",
    "It's “smart” ‘quotes’ «guillemets» don't – em—dash",
    "x" * 100,
    "x" * 101,
    "pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism",
    "tab\there\nnew\rline\x00nul\x07bell\ufffdreplacement\u200bzero\u200dwidth",
    "  \u00a0nbsp\u2003em\u3000ideographic\u2028line\u2029para  ",
    "ver\x0btical form\x0cfeed next\x85line sep\x1cfile",
    "co\u00adop \ufeffbom \u180emongolian \u061carabic-mark",
    "3.14159 1,000,000 2nd 10km 1e-9 -42 ½ ²",
    "Phone: +1 (555) 123-4567, ext. 89",
    "",
    "   \n\t  ",
    "a[MASK]b [PAD][UNK][CLS][SEP] x [mask] [ CLS ]",
    "ﬁnance ① Ⅻ ＡＢＣ full-width １２３",
    "𝐁𝐨𝐥𝐝 𝕯 math letters",
    "مرحبا بالعالم",
    "שָׁלוֹם עולם",
    "नमस्ते दुनिया",
    "Tiếng Việt có dấu",
    "ภาษาไทย",
    "https://example.com/path?q=1&r=2 user.name@mail.co.uk",
    "func f(x: Int) -> [Int] { return [x, x*2] } // ok",
    # Unicode 9+ punctuation and marks, unassigned, private use, and CJK extension blocks.
    "a\u2e45b a\u08d4b a\u0378b a\ue000b a\U0002B820b a\U0002B920b a\U00030000b",
]

# (text, pair, max_length, truncation, padding): special-token layout, truncation and padding.
ENCODINGS = [
    ("The quick brown fox jumps over the lazy dog near the riverbank at dawn", None, 16, True, "max_length"),
    ("Short one.", None, 16, True, "max_length"),
    ("How old are you?", "I am six years old.", 16, True, "max_length"),
    ("Is this the first sentence of a rather long pair?",
     "And this the second one, which is even longer than the first one was.", 16, True, "max_length"),
    ("Tiny?", "A second sentence that goes on and on well past the limit of sixteen tokens.", 16, True,
     "do_not_pad"),
    ("A first sentence that goes on and on well past the limit of sixteen tokens.", "Tiny.", 16, True,
     "do_not_pad"),
    ("one two three four five six seven", "one two three four five six seven", 16, True, "do_not_pad"),
    ("one two three four five six seven eight", "one two three four five six seven eight", 16, True,
     "do_not_pad"),
    ("un deux trois quatre cinq six sept huit", "uno dos tres", 16, True, "max_length"),
    ("no truncation here even though it is longer than sixteen tokens in total", None, 16, False,
     "max_length"),
    ("café au lait", "crème brûlée", None, True, "do_not_pad"),
]

# encodeBatch: ids, type ids and masks of a padded batch.
BATCHES = [
    (["A man is eating food.", "Stock markets fell sharply on Monday.", "Hi"], 16, "longest"),
    (["A man is eating a piece of bread while reading the morning newspaper at the kitchen table.",
      "Short."], 12, "max_length"),
]


def main():
    assets = os.environ.get("GRAFT_ASSETS", os.path.join(REPO, ".cache", "assets"))
    vocab = sys.argv[1] if len(sys.argv) > 1 else os.path.join(assets, "minilm", "vocab.txt")
    with open(vocab, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != VOCAB_SHA256:
        sys.exit(f"{vocab}: sha256 {digest}, expected the MiniLM vocabulary {VOCAB_SHA256}")
    tok = BertTokenizer(vocab, do_lower_case=True)

    singles = []
    for text in SINGLES:
        enc = tok(text)
        singles.append({
            "text": text,
            "tokens": tok.tokenize(text),
            "ids": enc["input_ids"],
            "decoded": tok.decode(enc["input_ids"]),
        })

    encodings = []
    for text, pair, max_length, truncation, padding in ENCODINGS:
        enc = tok(text, pair, max_length=max_length, truncation=truncation, padding=padding)
        encodings.append({
            "text": text, "pair": pair, "max_length": max_length, "truncation": truncation, "padding": padding,
            "ids": enc["input_ids"], "type_ids": enc["token_type_ids"], "mask": enc["attention_mask"],
        })

    batches = []
    for texts, max_length, padding in BATCHES:
        enc = tok(texts, max_length=max_length, truncation=True, padding=padding)
        batches.append({
            "texts": texts, "max_length": max_length, "padding": padding,
            "ids": enc["input_ids"], "type_ids": enc["token_type_ids"], "mask": enc["attention_mask"],
        })

    out = {
        "generator": f"transformers {transformers.__version__}, tokenizers {tokenizers.__version__}, "
                     f"BertTokenizer(vocab, do_lower_case=True)",
        "vocab_sha256": digest,
        "singles": singles,
        "encodings": encodings,
        "batches": batches,
    }
    path = os.path.join(HERE, "wordpiece_cases.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=True)
        f.write("\n")
    print(f"wrote {path}: {len(singles)} texts, {len(encodings)} encodings, {len(batches)} batches")


if __name__ == "__main__":
    main()
