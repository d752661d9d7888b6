"""Build tts/data/vi_words.txt: Vietnamese words of two syllables or more, with their tones.

tts/normalize/web.py reads a toneless web-address label ("togiactoipham", "canhsat") with its tones when
these words split it one way only ("tố giác tội phạm", "cảnh sát"). The words come from:
  * the word list of pyvi (PyPI, MIT licence, Copyright (c) 2016 Viet-Trung Tran), pyvi/models/words.txt:
    about 31,000 entries, of which about 25,000 have two syllables or more. Single syllables are left out:
    nearly every toneless syllable has several toned ones ("tinh": tinh, tính, tình, tỉnh, tĩnh, tịnh);
  * the Vietnamese expansions of the shipped lexicon, tts/data/lexicon.tsv ("ủy ban nhân dân").
Only words whose every syllable is spelled like a Vietnamese syllable are kept (tts.normalize.letters),
and the tone mark is put where the rest of the project writes it ("hòa", "khóa", "ủy", not "hoà").

Run once when either source changes (pip downloads the wheel; nothing is installed):
    .venv/bin/python -m pip download --no-deps -d /tmp/pyvi pyvi==0.1.1
    .venv/bin/python -m bench.vi_words /tmp/pyvi/pyvi-0.1.1-py2.py3-none-any.whl > tts/data/vi_words.txt
"""

from __future__ import annotations

import sys
import unicodedata
import zipfile
from pathlib import Path

from tts.normalize.letters import _is_syllable

LEXICON = Path(__file__).resolve().parents[1] / "tts" / "data" / "lexicon.tsv"
_TONES = "\u0300\u0301\u0303\u0309\u0323"

HEADER = """\
# Vietnamese words of two syllables or more, with their tones, one a line (lower case, NFC).
# Used by tts/normalize/web.py to read a toneless web-address label with its tones when these words
# split it in one way only ("canhsat" = "cảnh sát").
# Built by bench/vi_words.py from the word list of pyvi 0.1.1 (pyvi/models/words.txt) and the expansions
# of tts/data/lexicon.tsv; see that script. pyvi's licence:
#   The MIT License (MIT)
#   Copyright (c) 2016 Viet-Trung Tran
#   Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
#   associated documentation files (the "Software"), to deal in the Software without restriction,
#   including without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense,
#   and/or sell copies of the Software, and to permit persons to whom the Software is furnished to do so,
#   subject to the following conditions: The above copyright notice and this permission notice shall be
#   included in all copies or substantial portions of the Software.
#   THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT
#   LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN
#   NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY,
#   WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE
#   SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""


def bare(syllable: str) -> str:
    """The syllable without tone and vowel marks, "đ" as "d": how it is typed in a web address."""
    decomposed = unicodedata.normalize("NFD", syllable.replace("đ", "d"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def project_tone_style(syllable: str) -> str:
    """ "hoà" -> "hòa", "khoá" -> "khóa", "thuỷ" -> "thủy": in an open oa/oe/uy syllable the project (and
    its lexicon) writes the tone on the first vowel. "quý" keeps it: there "u" belongs to the onset."""
    decomposed = unicodedata.normalize("NFD", syllable)
    tones = [ch for ch in decomposed if ch in _TONES]
    plain = unicodedata.normalize("NFC", "".join(ch for ch in decomposed if ch not in _TONES))
    if len(tones) != 1:
        return syllable
    for pair in ("oa", "oe", "uy"):
        if plain.endswith(pair) and not plain.endswith("q" + pair) and not plain.startswith("gi"):
            at = len(plain) - 2
            return unicodedata.normalize("NFC", plain[: at + 1] + tones[0] + plain[at + 1 :])
    return syllable


def clean(word: str) -> str | None:
    syllables = unicodedata.normalize("NFC", word.strip().lower()).split()
    if len(syllables) < 2 or not all(s.isalpha() and _is_syllable(bare(s)) for s in syllables):
        return None
    return " ".join(project_tone_style(s) for s in syllables)


def lexicon_expansions() -> list[str]:
    out = []
    for raw in LEXICON.read_text("utf-8").splitlines():
        cells = raw.split("\t")
        if raw.startswith("#") or len(cells) < 3 or cells[2] == "domain":
            continue
        out.append(cells[1])
    return out


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as whl:
        pyvi_words = whl.read("pyvi/models/words.txt").decode("utf-8").splitlines()
    words = sorted({w for w in map(clean, [*pyvi_words, *lexicon_expansions()]) if w})
    sys.stdout.write(HEADER + "".join(w + "\n" for w in words))


if __name__ == "__main__":
    main(sys.argv[1])
