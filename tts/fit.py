"""Fitting a bulletin to exactly ``bulletin.length_s`` seconds.

Layout of every bulletin (a listener learns it):

    lead-in (programme, title) ─ body paragraphs ─ outro (scan the QR code) ─ bed ─ fade-out

The speech is never cut or time-stretched here.  The renderer chooses the speaking rate (within the
configured bounds) before synthesis; this module places the pauses between sentences and paragraphs,
stretching them between their minimum and maximum, and fills what remains with the bed.  The frame
count is exact by construction: the bulletin is ``length_s × sample_rate`` frames, either one buffer
(``assemble`` then ``add_bed``) or, in the render, the speech alone with the bed and fade computed a
chunk at a time as the bulletin is written (``Mix``): memory then grows with the speech, not the fill.

``plan`` is arithmetic, and the on-air process uses it (``tts.request``: does a short body fit twice?):
numpy and the audio modules are imported by the functions that place samples, not by this module, so
that process never loads them (issue 11: about 15 MiB of its RSS).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from playout.config import BulletinSettings

if TYPE_CHECKING:
    import numpy as np

LEAD_SILENCE_S = 0.25
#: Speech must end this long before the fade starts, so the fade only ever touches the bed.
SPEECH_END_MARGIN_S = 0.75
BED_FADE_IN_S = 1.5
#: Samples of the mix computed at a time when laying the bed into a whole buffer.
MIX_CHUNK = 1 << 16


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
    #: The bulletin's length in frames; ``samples`` may stop short of it (silence after, until the bed).
    frames: int = -1

    def __post_init__(self):
        if self.frames < 0:
            self.frames = len(self.samples)


def assemble(
    sections: Sequence[Sequence[np.ndarray]],
    rate: int,
    settings: BulletinSettings,
    *,
    tail_s: float | None = None,
) -> Assembly:
    """Place the clips into a buffer of exactly ``length_s × rate`` frames (the bed comes later).

    With ``tail_s`` the buffer stops that long after the last clip (never past the bulletin's end):
    the rest is silence until the bed is laid in, and need not be held as zeros.
    """
    import numpy as np

    speech_s = sum(len(c) for section in sections for c in section) / rate
    layout = plan(speech_s, sections, settings)
    if not layout.fits:
        raise ValueError(f"speech does not fit: {layout}")
    total = int(round(settings.length_s * rate))
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
            spans.append((pos, pos + len(clip)))
            pos += len(clip)
    frames = total if tail_s is None else min(total, pos + int(round(tail_s * rate)))
    out = np.zeros(frames, dtype=np.float32)
    clips = (clip for section in sections for clip in section)
    for (start, end), clip in zip(spans, clips, strict=True):
        out[start:end] = clip
    return Assembly(out, layout, LEAD_SILENCE_S, spans, total)


def speech_rms(samples: np.ndarray, spans: Sequence[tuple[int, int]]) -> float:
    """RMS of the sentence clips only (pauses excluded): the reference the bed's level is set against."""
    import numpy as np

    power = sum(float(np.square(samples[b:e], dtype=np.float64).sum()) for b, e in spans)
    return float(np.sqrt(power / max(1, sum(e - b for b, e in spans))))


class Mix:
    """The bulletin as it airs: the speech, the bed after it and the fade-out, a slice at a time.

    ``mix[a:b]`` is a new float32 array of those frames: ``speech`` (silence past its end, which may be
    short of ``frames``), plus the bed at ``level_db`` under ``reference_rms`` once the speech is over
    (after a short breath, never longer than the allowed silence, fading in so the outro's last word
    is not masked), times the equal-power fade over the last ``fade_s``.  The bed is laid after the
    speech has been brought to its loudness, so its level is relative to what listeners will hear.
    A slice's values do not depend on where the slices are cut: ``add_bed`` is this, written back.
    """

    def __init__(
        self,
        speech: np.ndarray,
        frames: int,
        speech_end: int,
        rate: int,
        settings: BulletinSettings,
        reference_rms: float,
        level_db: float,
    ):
        import numpy as np

        from tts.audio import db_to_gain
        from tts.bed import bed_source

        self.speech = speech
        self.frames = frames
        self.bed_start = min(frames, speech_end + int(round(min(0.6, settings.max_silence_s / 3) * rate)))
        n = frames - self.bed_start
        self.bed = bed_source(n / rate, rate, settings.music_bed) if n > 0 else None
        self.bed_gain = np.float32(reference_rms * db_to_gain(level_db))
        self.fade_in = np.linspace(0.0, 1.0, min(max(0, n), int(BED_FADE_IN_S * rate)), dtype=np.float32)
        fade = int(round(settings.fade_s * rate))
        self.fade_start = frames - fade
        # An equal-power (cosine) curve sounds smoother on a loudspeaker than a linear ramp.
        self.fade_out = np.cos(np.linspace(0.0, np.pi / 2, fade, dtype=np.float32))

    def __len__(self) -> int:
        return self.frames

    def __getitem__(self, key: slice) -> np.ndarray:
        start, stop, step = key.indices(self.frames)
        if step != 1:
            raise ValueError("a mix is read in contiguous slices")
        import numpy as np

        out = np.zeros(max(0, stop - start), dtype=np.float32)
        have = min(stop, len(self.speech))
        if start < have:
            out[: have - start] = self.speech[start:have]
        lo = max(start, self.bed_start)
        if self.bed is not None and lo < stop:
            bed = self.bed.block(lo - self.bed_start, stop - self.bed_start)
            bed *= self.bed_gain
            a, b = lo - self.bed_start, min(stop - self.bed_start, len(self.fade_in))
            if a < b:
                bed[: b - a] *= self.fade_in[a:b]
            out[lo - start :] += bed
        lo = max(start, self.fade_start)
        if lo < stop:
            out[lo - start :] *= self.fade_out[lo - self.fade_start : stop - self.fade_start]
        return out


def add_bed(
    out: np.ndarray,
    speech_end: int,
    rate: int,
    settings: BulletinSettings,
    reference_rms: float,
    level_db: float,
) -> None:
    """Lay the bed after the speech at ``level_db`` under ``reference_rms``, then fade the whole out
    (``Mix``, written back into ``out`` a chunk at a time)."""
    mix = Mix(out, len(out), speech_end, rate, settings, reference_rms, level_db)
    for start in range(0, len(out), MIX_CHUNK):
        out[start : start + MIX_CHUNK] = mix[start : start + MIX_CHUNK]
