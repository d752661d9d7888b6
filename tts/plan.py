"""Planning a render without rendering: which engine, what rate, how the bulletin will be laid out.

``playout check`` needs only this: syllable counts, the engine's calibrated speed and the fitter's
arithmetic.  Kept apart from ``tts.render`` (the DSP that measures and sets loudness) so a check on a Pi
starts in a fraction of a second, and the daemon can check an upload without loading it; ``Renderer`` is a
``Planner`` that can also render.

    est = Planner(config).estimate(read_script(path))
    est.fits, est.speech_s, est.layout.fill_s
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from playout.config import StationConfig
from playout.errors import EngineError, ScriptTooLong
from playout.intake import Script
from tts import fit
from tts.engines import Engine, get_engine
from tts.request import SpokenScript, render_request, spoken_script


@dataclass
class Estimate:
    engine: str
    voice: str
    rate_pct: int
    speech_s: float
    layout: fit.Layout
    syllables: int
    sentences: int
    warnings: list[str] = field(default_factory=list)
    error: ScriptTooLong | None = None
    #: The body will be read twice ("Xin nhắc lại"): it is short enough (``bulletin.repeat_short``).
    repeated: bool = False

    def as_dict(self) -> dict:
        out = {
            "engine": self.engine,
            "voice": self.voice,
            "rate": self.rate_pct,
            "speech_s": round(self.speech_s, 1),
            "pauses_s": round(self.layout.pauses_s, 1),
            "fill_s": round(max(0.0, self.layout.fill_s), 1),
            "fits": self.error is None,
            "syllables": self.syllables,
            "sentences": self.sentences,
            "repeated": self.repeated,
            "warnings": self.warnings,
        }
        if self.error is not None:
            out["error"] = self.error.to_dict()
        return out


class Planner:
    """The engine chain of a render and everything that can be known about it before synthesis."""

    def __init__(self, config: StationConfig, *, engines: Sequence[str] | None = None):
        self.config = config
        self.chain = list(engines or config.tts.engines)
        self._engines: dict[str, Engine] = {}

    # -- engines and estimates ------------------------------------------------------------------------

    def engine(self, name: str) -> Engine:
        if name not in self._engines:
            self._engines[name] = get_engine(name, self.config.tts)
        return self._engines[name]

    def request(self, script: Script, spoken: SpokenScript) -> dict:
        """Everything that shapes the audio; its hash is the cache key."""
        return render_request(self.config, self.chain, script, spoken)

    def _choose_rate(self, speech_at_natural_s: float, spoken: SpokenScript) -> int:
        """The speaking rate that best fills the bulletin, within the configured bounds.

        Natural speed when the script fits with relaxed pauses; a little slower (clearer on horns) when
        it would leave a long fill; faster, up to the limit, only when it does not fit otherwise.
        """
        b = self.config.bulletin
        n_sent, n_para = fit.count_gaps(spoken.sections)
        avail = fit.available_s(b)
        relaxed = avail - n_sent * b.sentence_pause_s[1] - n_para * b.paragraph_pause_s[1]
        tight = avail - n_sent * b.sentence_pause_s[0] - n_para * b.paragraph_pause_s[0]
        if relaxed > 0 and speech_at_natural_s <= relaxed:
            return max(b.rate_min_pct, math.ceil(100 * (speech_at_natural_s / relaxed - 1)))
        if tight > 0 and speech_at_natural_s <= tight:
            return 0
        needed = math.ceil(100 * (speech_at_natural_s / max(tight, 1e-3) - 1)) + 1
        return min(b.rate_max_pct, needed)

    def estimate(self, script: Script, spoken: SpokenScript | None = None) -> Estimate:
        """How the render will come out, from syllable counts alone (no synthesis)."""
        spoken = spoken or spoken_script(script, self.config)
        engine = self._first_engine()
        natural = spoken.total_syllables / engine.syllables_per_s
        rate = self._choose_rate(natural, spoken)
        speech = natural / (1 + rate / 100)
        layout = fit.plan(speech, spoken.sections, self.config.bulletin)
        est = Estimate(
            engine.name,
            engine.pick_voice(script.meta.voice),
            rate,
            speech,
            layout,
            spoken.total_syllables,
            len(spoken.sentences),
        )
        est.repeated = spoken.repeated
        est.warnings = self._warnings(script, spoken, layout)
        if not layout.fits:
            est.error = self._too_long(speech, spoken, rate)
        return est

    def _first_engine(self) -> Engine:
        """The engine that will most likely read the script: estimates are calibrated per engine."""
        for name in self.chain:
            try:
                engine = self.engine(name)
            except EngineError:
                continue
            if engine.ready():
                return engine
        return self.engine("espeak")

    def _warnings(self, script: Script, spoken: SpokenScript, layout: fit.Layout) -> list[str]:
        warnings = list(script.warnings)
        if spoken.unknown_abbreviations:
            warnings.append(
                "Chữ viết tắt chưa có trong từ điển, máy sẽ đánh vần: "
                + ", ".join(spoken.unknown_abbreviations)
            )
        b = self.config.bulletin
        if layout.fits and layout.fill_s > b.short_fill_warning_s:
            per_s = spoken.total_syllables / max(layout.speech_s, 1e-3)
            warnings.append(
                f"Bản tin ngắn: còn khoảng {layout.fill_s:.0f} giây nhạc nền; "
                f"có thể viết thêm khoảng {int(layout.fill_s * per_s)} chữ"
            )
        return warnings

    def _too_long(self, speech_s: float, spoken: SpokenScript, rate: int) -> ScriptTooLong:
        b = self.config.bulletin
        layout = fit.plan(speech_s, spoken.sections, b)
        over = -layout.fill_s
        per_s = spoken.total_syllables / max(speech_s, 1e-3)
        cut = max(1, math.ceil(over * per_s))
        return ScriptTooLong(
            f"Bản tin quá dài: đọc ở tốc độ nhanh nhất cho phép ({rate:+d}%) phần lời mất "
            f"{speech_s:.0f} giây (kể cả nghỉ giữa câu là {speech_s + layout.pauses_s:.0f} giây), "
            f"vượt {over:.0f} giây so với "
            f"{b.length_s:.0f} giây của bản tin. Cần bớt khoảng {cut} chữ; máy không tự cắt câu.",
            speech_s=round(speech_s, 1),
            over_s=round(over, 1),
            words_to_cut=cut,
            rate=rate,
        )

    def close(self) -> None:
        for engine in self._engines.values():
            engine.close()


def arrival_checks(config: StationConfig, script: Script) -> dict:
    """What an operator and an approver should know when a script arrives, before anything is stored.

    Raises ``ScriptTooLong`` (with ``words_to_cut``) for a script that cannot fit the bulletin even at the
    fastest allowed rate: it is refused at the door, never approved and then failed at render time.
    Otherwise the estimate: reading time, how much of the bulletin is speech, the engine that will most
    likely read it, and the warnings (converted encoding, unknown abbreviations, a short bulletin, the
    offline voice standing in for Edge).  Uses no speech engine: syllable counts and the fitter's arithmetic.
    """
    planner = Planner(config)
    est = planner.estimate(script)
    if est.error is not None:
        raise est.error
    warnings = list(est.warnings)
    first = planner.chain[0] if planner.chain else est.engine
    if est.engine != first:
        warnings.append(
            f"Bộ đọc {first} hiện không dùng được; bản tin sẽ được đọc bằng giọng dự phòng ({est.engine})"
        )
    length = config.bulletin.length_s
    return {
        "speech_s": round(est.speech_s, 1),
        "pauses_s": round(est.layout.pauses_s, 1),
        "fill_s": round(max(0.0, est.layout.fill_s), 1),
        "length_s": length,
        "speech_share": round(min(1.0, (est.speech_s + est.layout.pauses_s) / length), 3),
        "engine": est.engine,
        "voice": est.voice,
        "rate": est.rate_pct,
        "sentences": est.sentences,
        "syllables": est.syllables,
        "words": len(script.body.split()),
        "repeated": est.repeated,
        "warnings": warnings,
    }
