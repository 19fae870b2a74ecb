"""Writes yaml_cases.json: what PyYAML makes of documents written as Graft's recipes are, for YAMLTests.swift.

Run with any Python that has PyYAML (pip install pyyaml):
    python3 Tests/GraftIOTests/Fixtures/make_yaml_fixtures.py
Each case is {"yaml": text, "json": value}. Graft keeps scalars as text, so the loader here is PyYAML's SafeLoader
with every implicit type dropped except null: converting safe_load's result with str() instead would turn `true`
into "True" and `1.0e-3` into "0.001", which is not what the file says.
"""
import json
import pathlib

import yaml

here = pathlib.Path(__file__).parent
NULL_TAG = "tag:yaml.org,2002:null"


class TextLoader(yaml.SafeLoader):
    """SafeLoader that resolves only null; every other plain scalar stays a string."""


TextLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag == NULL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

CASES = [
    # A typical recipe: nested mappings, a sequence of scalars, numbers and booleans left as text.
    """\
model:
  name: resnet18
  pretrained: true
  num_classes: 10
optimizer:
  name: adamw
  lr: 3e-4
  weight_decay: 0.01
  betas: [0.9, 0.999]
epochs: 20
""",
    # Sequences of mappings, continued at the item's content column, with nested blocks inside items.
    """\
stages:
  - name: head
    epochs: 2
    freeze:
      - backbone.*
      - embeddings
  - name: full
    epochs: 8
    lr: 1.0e-5
""",
    # Sequences at the same column as their key, inside a sequence item's mapping too.
    """\
train:
- a
- b
groups:
- pattern: "*.bias"
  tags:
  - no_decay
  - fast
  lr: 0
- pattern: "*"
""",
    # Nested block sequences, compact and on their own lines, and an item mapping starting on the next line.
    """\
- - 1
  - 2
- -
    - deep
- 
  key: value
- [x, y]
""",
    # Flow collections: nested, empty, quoted items, trailing comma, JSON style.
    """\
sizes: [224, 256, [320, 384], []]
opt: {lr: 1e-3, name: adam, extra: {}}
names: ["c d", 'e, f', plain words]
json: {"a": 1, "b": [true, null]}
trailing: [a, b, ]
nulls: {x: , y: ~, z: null}
""",
    # Every scalar quoting form and escape.
    """\
plain: hello world
single: 'it''s here'
double: "tab\\there \\"quoted\\" back\\\\slash"
newline: "line1\\nline2"
unicode: "caf\\u00e9 \\u2713"
slash: "a\\/b"
empty_single: ''
empty_double: ""
quoted_null: "null"
quoted_tilde: '~'
spaces: "  padded  "
raw_unicode: naïve ✓ 🎉
""",
    # Comments everywhere, and '#' that is not a comment.
    """\
# leading comment

a: 1  # trailing comment
b: "x # not a comment"
c: 'y # nor this'
d: a#b
   # an indented comment
e:
  # comment before a nested block

  f: g   # after
h: [1, 2]  # after a flow collection
""",
    # Null forms.
    """\
a:
b: ~
c: null
d: Null
e: NULL
f: # only a comment
g: [~, null]
list:
  -
  - ~
  - x
""",
    # Document markers.
    """\
--- # start
name: run
...
# trailing comment after the end marker
""",
    # Colons and dashes inside plain scalars.
    """\
url: http://example.com:8080/path
time: 12:30
negative: -1
range: 1-5
dash-key: x
key with spaces: value with spaces
ratio: a:b
"quoted key": 1
'single key': 2
""",
    # Deep nesting with varied indentation widths.
    """\
a:
    b:
      c:
         - d:
             e: f
           g: h
    i: j
""",
    # A top-level sequence of scalars with trailing spaces.
    "- one   \n- two \n- 'three'   \n",
    # A lone scalar document.
    "just text\n",
    # Windows line endings.
    "a: 1\r\nb:\r\n  - x\r\n  - y\r\n",
    # An empty document.
    "# nothing here\n\n",
    # Key spacing and special characters in plain values.
    """\
key   : spaced
path: /data/train/*.jpg
glob: "**/*.png"
percent: 50%
at: user@host
question: what?
""",
]


def main():
    cases = [{"yaml": text, "json": yaml.load(text, Loader=TextLoader)} for text in CASES]
    (here / "yaml_cases.json").write_text(json.dumps(cases, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
