"""Fitting a bulletin to exactly ``bulletin.length_s`` seconds.

Layout of every bulletin (a listener learns it):

    lead-in (programme, title) ─ body paragraphs ─ outro (scan the QR code) ─ bed ─ fade-out

The speech is never cut or time-stretched here.  The renderer chooses the speaking rate (within the
configured bounds) before synthesis; this module places the pauses between sentences and paragraphs,
stretching them between their minimum and maximum, and fills what remains with the bed.  The frame
count is exact by construction: the output buffer is allocated at ``length_s × sample_rate`` frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from playout.config import BulletinSettings
from tts.audio import db_to_gain
from tts.bed import make_bed

LEAD_SILENCE_S = 0.25
#: Speech must end this long before the fade starts, so the fade only ever touches the bed.
SPEECH_END_MARGIN_S = 0.75
BED_FADE_IN_S = 1.5


@dataclass(frozen=True)
class Layout:
    """How the speech sits in the bulletin, before any audio is placed."""

    speech_s: float
    sentence_pause_s: float
    paragraph_pause_s: float
    pauses_s: float
    speech_end_s: float
    fill_s: float

    @property
    def fits(self) -> bool:
        return self.fill_s >= 0


def available_s(settings: BulletinSettings) -> float:
    """Seconds that speech and its pauses may take."""
    return settings.length_s - settings.fade_s - SPEECH_END_MARGIN_S - LEAD_SILENCE_S


def count_gaps(sections: Sequence[Sequence[object]]) -> tuple[int, int]:
    """(sentence gaps, paragraph gaps) for sections given as lists of sentences."""
    non_empty = [s for s in sections if len(s)]
    sentence_gaps = sum(len(s) - 1 for s in non_empty)
    return sentence_gaps, max(0, len(non_empty) - 1)


def plan(speech_s: float, sections: Sequence[Sequence[object]], settings: BulletinSettings) -> Layout:
    """Place pauses for ``speech_s`` seconds of speech; ``fill_s`` < 0 means it does not fit."""
    n_sent, n_para = count_gaps(sections)
    s_lo, s_hi = settings.sentence_pause_s
    p_lo, p_hi = settings.paragraph_pause_s
    min_pauses = n_sent * s_lo + n_para * p_lo
    max_pauses = n_sent * s_hi + n_para * p_hi
    spare = available_s(settings) - speech_s - min_pauses
    span = max_pauses - min_pauses
    # One stretch factor for every pause keeps the rhythm even: 0 = tightest, 1 = most relaxed.
    stretch = 0.0 if span <= 0 or spare <= 0 else min(1.0, spare / span)
    sentence_pause = s_lo + stretch * (s_hi - s_lo)
    paragraph_pause = p_lo + stretch * (p_hi - p_lo)
    pauses = n_sent * sentence_pause + n_para * paragraph_pause
    speech_end = LEAD_SILENCE_S + speech_s + pauses
    fill = settings.length_s - speech_end
    if speech_end > settings.length_s - settings.fade_s - SPEECH_END_MARGIN_S + 1e-9:
        fill = -(speech_end - (settings.length_s - settings.fade_s - SPEECH_END_MARGIN_S))
    return Layout(speech_s, sentence_pause, paragraph_pause, pauses, speech_end, fill)


@dataclass
class Assembly:
    samples: np.ndarray
    layout: Layout
    speech_start_s: float
    #: (start, end) sample of every sentence clip, for the verifier.
    spans: list[tuple[int, int]]


def assemble(sections: Sequence[Sequence[np.ndarray]], rate: int, settings: BulletinSettings) -> Assembly:
    """Place the clips into a buffer of exactly ``length_s × rate`` frames (the bed comes later)."""
    speech_s = sum(len(c) for section in sections for c in section) / rate
    layout = plan(speech_s, sections, settings)
    if not layout.fits:
        raise ValueError(f"speech does not fit: {layout}")
    total = int(round(settings.length_s * rate))
    out = np.zeros(total, dtype=np.float32)
    spans: list[tuple[int, int]] = []
    pos = int(round(LEAD_SILENCE_S * rate))
    first_section = True
    for section in sections:
        if not section:
            continue
        if not first_section:
            pos += int(round(layout.paragraph_pause_s * rate))
        first_section = False
        for i, clip in enumerate(section):
            if i:
                pos += int(round(layout.sentence_pause_s * rate))
            out[pos : pos + len(clip)] = clip
            spans.append((pos, pos + len(clip)))
            pos += len(clip)
    return Assembly(out, layout, LEAD_SILENCE_S, spans)


def speech_rms(samples: np.ndarray, spans: Sequence[tuple[int, int]]) -> float:
    """RMS of the sentence clips only (pauses excluded): the reference the bed's level is set against."""
    power = sum(float(np.square(samples[b:e], dtype=np.float64).sum()) for b, e in spans)
    return float(np.sqrt(power / max(1, sum(e - b for b, e in spans))))


def add_bed(
    out: np.ndarray,
    speech_end: int,
    rate: int,
    settings: BulletinSettings,
    reference_rms: float,
    level_db: float,
) -> None:
    """Lay the bed after the speech at ``level_db`` under ``reference_rms``, then fade the whole out.

    Done after the speech has been brought to its loudness, so the bed's level is relative to what
    listeners will actually hear.  The bed starts after a short breath (never longer than the allowed
    silence) and fades in, so the outro's last word is not masked.
    """
    start = min(len(out), speech_end + int(round(min(0.6, settings.max_silence_s / 3) * rate)))
    n = len(out) - start
    if n > 0:
        bed = make_bed(n / rate, rate, settings.music_bed)[:n]
        bed *= np.float32(reference_rms * db_to_gain(level_db))
        fade_in = min(n, int(BED_FADE_IN_S * rate))
        bed[:fade_in] *= np.linspace(0.0, 1.0, fade_in, dtype=np.float32)
        out[start:] += bed
    fade = int(round(settings.fade_s * rate))
    # An equal-power (cosine) curve sounds smoother on a loudspeaker than a linear ramp.
    out[-fade:] *= np.cos(np.linspace(0.0, np.pi / 2, fade, dtype=np.float32))
