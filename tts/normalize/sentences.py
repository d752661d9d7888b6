"""Sentences and syllables of the spoken form: for the renderer and the reading-time estimate."""

from __future__ import annotations

import re
import unicodedata

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")


_SENTENCE_BREAK = re.compile(r"(?<=[.!?…])\s+")


def split_sentences(spoken: str) -> list[list[str]]:
    """Paragraphs, each a list of sentences, from to_spoken's output.

    A sentence ends at . ! ? … followed by a space, and at the end of a line (a bullet item or a heading is
    its own sentence). Punctuation-only pieces are dropped. Empty input gives [].
    """
    paragraphs = []
    for paragraph in _PARAGRAPH_BREAK.split(spoken.strip()):
        sentences = []
        for line in paragraph.split("\n"):
            for sentence in _SENTENCE_BREAK.split(line.strip()):
                sentence = sentence.strip()
                if any(ch.isalpha() for ch in sentence):
                    sentences.append(sentence)
        if sentences:
            paragraphs.append(sentences)
    return paragraphs


_LETTER_RUN = re.compile(r"[^\W\d_]+")


def syllable_count(spoken: str) -> int:
    """Spoken syllables: Vietnamese words are single syllables, so count the runs of letters."""
    return len(_LETTER_RUN.findall(unicodedata.normalize("NFC", spoken)))
