"""What a render request is, and whether the render cache already holds its answer.

Split from ``tts.render`` so that finding a cached bulletin loads no audio or speech library: the spoken
form comes from ``tts.normalize`` (pure Python), the key from ``tts.cache``.  ``playout render`` asks
here first and builds a ``Renderer`` (numpy's DSP, the WAV writer, an engine's client) only for a script
that really needs synthesizing.

    hit = find_cached(config, read_script(path))
    if hit is None:
        hit = Renderer(config).render(read_script(path))

``tts.render`` re-exports ``PIPELINE_VERSION``, ``SpokenScript``, ``spoken_script`` and ``RenderResult``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tts.cache import RenderCache, cache_key
from tts.normalize import split_sentences, syllable_count, to_spoken, unknown_abbreviations

if TYPE_CHECKING:
    from playout.config import StationConfig
    from playout.intake import Script

logger = logging.getLogger(__name__)

#: Bump when a change to the pipeline changes the audio, so old cache entries are not reused.
PIPELINE_VERSION = 1


@dataclass
class SpokenScript:
    """The script as it will be read: lead-in, body paragraphs and outro, as lists of sentences."""

    sections: list[list[str]]
    syllables: list[list[int]]
    unknown_abbreviations: list[str]
    #: The body is read twice, "Xin nhắc lại" between (a short bulletin, ``bulletin.repeat_short``).
    repeated: bool = False

    @property
    def sentences(self) -> list[str]:
        return [s for section in self.sections for s in section]

    @property
    def total_syllables(self) -> int:
        return sum(sum(counts) for counts in self.syllables)


@dataclass
class RenderResult:
    path: Path
    summary: dict
    cached: bool


def _spoken(text: str) -> list[list[str]]:
    return [p for p in split_sentences(to_spoken(text)) if p]


#: The slowest engine's calibrated speed (espeak-ng), in syllables per second: a repetition decided with
#: it fits whichever engine reads, and the decision (part of the cache key) does not depend on which.
REPEAT_DECISION_SPEED = 4.0
#: A body is read twice only if it would fit even 20 % slower than estimated.
REPEAT_MARGIN = 1.2


def spoken_script(script: Script, config: StationConfig, *, repeat: bool = True) -> SpokenScript:
    b = config.bulletin
    title = (script.meta.title or "").strip()
    # Plain replacement rather than str.format: the templates come from a config file and a stray
    # brace in them must not crash a render.
    lead = b.lead_in.replace("{programme}", b.programme_name).replace("{title}", title)
    lead_sentences = [s for p in _spoken(lead) for s in p]
    body = _spoken(script.body)
    # The outro invites listeners to scan the QR code only when there is something to scan.
    has_link = bool(script.meta.link or config.qr.base_url)
    outro_sentences = [s for p in _spoken(b.outro_for(has_link)) for s in p]
    once = [s for s in [lead_sentences, *body, outro_sentences] if s]
    sections, repeated = once, False
    if repeat and b.repeat_short and body:
        # Ward loudspeakers repeat their announcements: a body that fits twice is read twice, rather
        # than once followed by minutes of pad with the amplifier on.
        again = [s for s in [lead_sentences, *body, [s for p in _spoken(b.repeat_phrase) for s in p], *body,
                             outro_sentences] if s]  # fmt: skip
        if _fits_at_natural_speed(again, b):
            sections, repeated = again, True
    syllables = [[max(1, syllable_count(s)) for s in section] for section in sections]
    return SpokenScript(sections, syllables, unknown_abbreviations(script.body), repeated)


def _fits_at_natural_speed(sections: list[list[str]], settings) -> bool:
    from tts import fit  # arithmetic only; kept out of this module's imports for the cheap commands

    speech_s = sum(max(1, syllable_count(s)) for section in sections for s in section) / REPEAT_DECISION_SPEED
    # With room to spare: an engine reading slower than its calibration must not make it too long.
    return fit.plan(speech_s * REPEAT_MARGIN, sections, settings).fits


def render_request(config: StationConfig, chain: Sequence[str], script: Script, spoken: SpokenScript) -> dict:
    """Everything that shapes the audio; its hash is the cache key."""
    b = config.bulletin
    bed = None
    if b.music_bed is not None and b.music_bed.is_file():
        bed = hashlib.sha256(b.music_bed.read_bytes()).hexdigest()
    return {
        "pipeline": PIPELINE_VERSION,
        "sections": spoken.sections,
        "chain": list(chain),
        "voice": script.meta.voice,
        "tts": config.tts.model_dump(mode="json"),
        "bulletin": b.model_dump(mode="json", exclude={"music_bed"}),
        "music_bed": bed,
    }


def cached_result(cache: RenderCache, key: str, script: Script) -> RenderResult | None:
    """The cache entry for ``key`` as a render result, or None when it is missing or damaged."""
    hit = cache.get(key)
    if hit is None:
        return None
    path, summary = hit
    logger.info("render cache hit for %s (%s)", script.name, key[:12])
    return RenderResult(path, {**summary, "cached": True}, True)


def find_cached(
    config: StationConfig,
    script: Script,
    *,
    engines: Sequence[str] | None = None,
    cache: RenderCache | None = None,
) -> RenderResult | None:
    """What ``Renderer(config, engines=engines).render(script)`` would return from its cache, or None."""
    chain = list(engines or config.tts.engines)
    key = cache_key(render_request(config, chain, script, spoken_script(script, config)))
    return cached_result(cache or RenderCache(config.cache_dir), key, script)
