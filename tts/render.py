"""The render pipeline: an approved script becomes an air-ready bulletin of exactly ``length_s``.

    spoken form → engine chain → fit (rate, pauses, bed, fade) → loudness → verify → atomic cache write

Rendering happens when a bulletin is approved or at start-up, never at air time, so it may take a few
seconds; it must never produce a file that would sound wrong on a loudspeaker.  The same request twice
is a cache hit and synthesizes nothing.

    renderer = Renderer(config)
    result = renderer.render(read_script(Path("bulletins/approved/x.md")))
    result.path, result.summary["duration_s"]
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import time
from collections.abc import Sequence

import numpy as np

from playout import __version__
from playout.config import StationConfig
from playout.errors import EngineError, EngineUnavailable, RenderError, ScriptTooLong
from playout.intake import Script
from tts import fit, loudness
from tts.audio import from_pcm16, resample, to_pcm16, wav_buffer
from tts.cache import RenderCache, cache_key
from tts.engines import Engine, Take

# The planning half (estimates, the request and its cache key) lives in light modules that
# `playout check` and a cached `playout render` use alone; re-exported here for existing callers.
from tts.plan import Estimate, Planner
from tts.request import PIPELINE_VERSION, RenderResult, SpokenScript, cached_result, spoken_script
from tts.verify import Measurements, measure, verify

__all__ = [
    "HOPELESS_MARGIN",
    "PIPELINE_VERSION",
    "RATE_CORRECTIONS",
    "Estimate",
    "Planner",
    "RenderResult",
    "Renderer",
    "SpokenScript",
    "spoken_script",
]

logger = logging.getLogger(__name__)

#: Re-synthesize at most this many times to correct the rate when the estimate was off.
RATE_CORRECTIONS = 2
#: The lowest the bed is taken under the speech to keep the bulletin's loudness (it is inaudible there).
BED_FLOOR_DB = -48.0
#: If the estimate says a script is this much over even at the fastest rate, refuse without synthesizing.
HOPELESS_MARGIN = 1.12
#: Silence kept after the last sentence in the speech buffer: the K-weighting's response (~0.15 s) and
#: the last 400 ms gating blocks end inside it, so the speech's loudness reads as in the whole bulletin.
SPEECH_TAIL_S = 1.0


class Renderer(Planner):
    """Renders scripts with the configured engine chain into the render cache."""

    def __init__(
        self, config: StationConfig, *, engines: Sequence[str] | None = None, cache: RenderCache | None = None
    ):
        super().__init__(config, engines=engines)
        self.cache = cache or RenderCache(config.cache_dir)
        #: How many times an engine was asked to synthesize (the cache tests read it).
        self.synth_calls = 0

    # -- rendering ------------------------------------------------------------------------------------

    def render(self, script: Script) -> RenderResult:
        spoken = spoken_script(script, self.config)
        key = cache_key(self.request(script, spoken))
        hit = cached_result(self.cache, key, script)
        if hit is not None:
            return hit

        estimate = self.estimate(script, spoken)
        if estimate.error is not None and spoken.repeated:
            # The cache key stays the request's; what it holds is the one reading that fits.
            spoken = spoken_script(script, self.config, repeat=False)
            estimate = self.estimate(script, spoken)
        if estimate.error is not None and -estimate.layout.fill_s > fit.available_s(self.config.bulletin) * (
            HOPELESS_MARGIN - 1
        ):
            raise estimate.error
        attempts: list[str] = []
        for name in self.chain:
            try:
                engine = self.engine(name)
            except EngineError as exc:
                logger.warning(
                    "engine %s unavailable for %s: %s", name, script.name, exc.detail or exc.message
                )
                attempts.append(f"{name}: {exc.message}")
                continue
            for voice in engine.voice_chain(script.meta.voice):
                started = time.monotonic()
                try:
                    try:
                        summary, wav = self._render_with(engine, voice, script, spoken)
                    except ScriptTooLong:
                        if not spoken.repeated:
                            raise
                        # Read twice it came out longer than estimated: once it fits, as it always did.
                        logger.info("%s: too long to read twice with %s; read once", script.name, name)
                        spoken = spoken_script(script, self.config, repeat=False)
                        summary, wav = self._render_with(engine, voice, script, spoken)
                except ScriptTooLong:
                    raise
                except EngineUnavailable as exc:
                    # The engine cannot run at all (service down, model missing): its other voices
                    # would fail the same way, so go straight to the next engine.
                    self._log_failure(name, voice, script, started, exc)
                    attempts.append(f"{name}: {exc.message}")
                    break
                except RenderError as exc:
                    # This voice failed (no audio, cut short, failed verification): the next may not.
                    self._log_failure(name, voice, script, started, exc)
                    attempts.append(f"{name}/{voice}: {exc.message}")
                    continue
                if attempts:
                    summary["warnings"].append("Đã đọc bằng giọng dự phòng vì: " + "; ".join(attempts))
                summary.update(
                    cache_key=key, fallback=bool(attempts), warnings=estimate.warnings + summary["warnings"]
                )
                path = self.cache.put(key, wav, summary)
                logger.info(
                    "rendered %s with %s/%s at %+d%%: speech %.1fs, fill %.1fs, %.2f LUFS, %.2f dBTP",
                    script.name,
                    summary["engine"],
                    summary["voice"],
                    summary["rate"],
                    summary["speech_s"],
                    summary["fill_s"],
                    summary["lufs"],
                    summary["true_peak_dbtp"],
                )
                return RenderResult(path, {**summary, "cached": False}, False)
        raise RenderError(
            "Không bộ đọc nào tạo được bản tin: " + "; ".join(attempts),
            code="ENGINES_EXHAUSTED",
            attempts=attempts,
        )

    @staticmethod
    def _log_failure(name: str, voice: str, script: Script, started: float, exc: RenderError) -> None:
        logger.warning(
            "engine %s/%s failed for %s after %.1fs: [%s] %s %s",
            name,
            voice,
            script.name,
            time.monotonic() - started,
            exc.code,
            exc.message,
            exc.detail,
        )

    def _synthesize(self, engine: Engine, voice: str, rate: int, spoken: SpokenScript) -> Take:
        self.synth_calls += 1
        take = engine.synthesize(spoken.sentences, voice=voice, rate_pct=rate)
        if len(take.clips) != len(spoken.sentences):
            raise EngineError(
                f"Bộ đọc {engine.name} trả về {len(take.clips)} câu cho {len(spoken.sentences)} câu văn bản",
                engine=engine.name,
            )
        return take

    def _render_with(
        self, engine: Engine, voice: str, script: Script, spoken: SpokenScript
    ) -> tuple[dict, bytes]:
        b = self.config.bulletin
        rate_hz = b.sample_rate
        rate = self._choose_rate(spoken.total_syllables / engine.syllables_per_s, spoken)
        for correction in range(RATE_CORRECTIONS + 1):
            take = self._synthesize(engine, voice, rate, spoken)
            layout = fit.plan(take.speech_s, spoken.sections, b)
            if layout.fits:
                break
            if rate >= b.rate_max_pct or correction == RATE_CORRECTIONS:
                raise self._too_long(take.speech_s, spoken, rate)
            # Duration scales close to 1/rate; aim at the tight fit plus one point of margin.
            n_sent, n_para = fit.count_gaps(spoken.sections)
            tight = fit.available_s(b) - n_sent * b.sentence_pause_s[0] - n_para * b.paragraph_pause_s[0]
            factor = take.speech_s / max(tight, 1e-3)
            rate = min(b.rate_max_pct, math.ceil((1 + rate / 100) * factor * 100 - 100) + 1)
            logger.info("%s: speech %.1fs does not fit, trying rate %+d%%", script.name, take.speech_s, rate)

        # Each clip is replaced by its resampled self, so the engine's copy of it is freed at once.
        clips = take.clips
        for i in range(len(clips)):
            clips[i] = resample(clips[i], take.sample_rate, rate_hz)
        each = iter(clips)
        sections = [[next(each) for _ in section] for section in spoken.sections]
        del take, clips, each
        # Only the speech is held as samples (and enough silence after it for the meter's last blocks);
        # the bed and fade are computed as the bulletin is written, so a long fill costs no memory.
        assembly = fit.assemble(sections, rate_hz, b, tail_s=SPEECH_TAIL_S)
        del sections
        # Loudness is set on the speech alone.  Measuring the mix instead misleads: BS.1770's relative
        # gate lets a long bed in or out as the limiter flattens the speech, so the mix's loudness is not
        # even monotonic in the gain.  Normalized in place: one float copy of the speech, not two.
        speech = loudness.normalize(
            assembly.samples,
            rate_hz,
            target_lufs=b.loudness_lufs,
            ceiling_dbtp=b.true_peak_dbtp,
            tolerance_lu=b.loudness_tolerance_lu,
            out=assembly.samples,
        ).samples
        speech_end = assembly.spans[-1][1]
        reference = fit.speech_rms(speech, assembly.spans)
        # The WAV file's bytes, written once: the bulletin is quantized straight into them.
        wav, pcm = wav_buffer(assembly.frames, rate_hz)
        bed_db = b.bed_level_db
        while True:
            mix = fit.Mix(speech, assembly.frames, speech_end, rate_hz, b, reference, bed_db)
            measured = self._finish(mix, pcm, rate_hz, speech_end)
            # A short script leaves a long bed; if the gate counts it, it drags the bulletin's loudness
            # down.  The speech is what must be at the target, so the bed gives way, 6 dB at a time, down
            # to where no gate counts it (a few seconds of speech in a minute needs that).
            if measured.lufs >= b.loudness_lufs - b.loudness_tolerance_lu * 0.6 or bed_db <= BED_FLOOR_DB:
                break
            bed_db = max(BED_FLOOR_DB, bed_db - 6.0)
            logger.info(
                "%s: bed lowered to %.0f dB under the speech to keep the loudness", script.name, -bed_db
            )
        del speech, mix
        assembly.samples = np.zeros(0, dtype=np.float32)  # the speech: a view would keep it all
        syllables = [n for section in spoken.syllables for n in section]
        verify(pcm, rate_hz, b, spans=assembly.spans, syllables=syllables, measured=measured)
        del pcm  # a view of ``wav``
        lay = assembly.layout
        summary = {
            "duration_s": round(measured.duration_s, 3),
            "speech_s": round(lay.speech_s, 2),
            "pauses_s": round(lay.pauses_s, 2),
            "fill_s": round(lay.fill_s, 2),
            "engine": engine.name,
            "voice": voice,
            "rate": rate,
            "lufs": round(measured.lufs, 2),
            "true_peak_dbtp": round(measured.true_peak_dbtp, 2),
            "longest_silence_s": round(measured.longest_silence_s, 2),
            "frames": measured.frames,
            "sample_rate": rate_hz,
            "sentences": len(syllables),
            "syllables": sum(syllables),
            "repeated": spoken.repeated,
            "warnings": [],
            "script": script.name,
            "title": script.display_title,
            "content_sha256": script.content_sha256,
            "audio_sha256": hashlib.sha256(wav).hexdigest(),
            "rendered_at": dt.datetime.now(self.config.tz).isoformat(timespec="seconds"),
            "version": __version__,
        }
        return summary, wav

    def _finish(self, mix: fit.Mix, pcm: np.ndarray, rate: int, speech_end: int) -> Measurements:
        """Quantize ``mix`` into ``pcm`` (16 bits, TPDF dither) and measure exactly what will be written.

        The meters read the PCM a chunk at a time.  The true-peak meter has the last word: an
        inter-sample over that got past the limiter's margin (rare) is limited again, lower by what was
        found, and measured again (that takes one float copy of the bulletin, limited in place).
        """
        b = self.config.bulletin
        attempts = 3
        samples = mix
        while True:
            to_pcm16(samples, dither_seed=0, out=pcm)  # fixed seed: the same request gives the same bytes
            del samples
            measured = measure(pcm, rate, b, speech_end)
            over = measured.true_peak_dbtp - b.true_peak_dbtp
            attempts -= 1
            if over <= 0 or attempts == 0:
                break
            logger.info("true peak %.2f dBTP over the ceiling: limiting again", measured.true_peak_dbtp)
            written = from_pcm16(pcm)
            samples = loudness.limit(
                written, rate, b.true_peak_dbtp - loudness.LIMITER_MARGIN_DB - over - 0.2, out=written
            )
            del written
        return measured
