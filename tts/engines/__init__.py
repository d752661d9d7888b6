"""The speech-engine seam: one interface, several engines, tried in order.

An engine turns a list of spoken-form sentences into one audio clip per sentence.  Clips are separate so
the fitter owns every pause between sentences (that is how a bulletin is fitted to exactly 3:00), and so
a missing or empty sentence is visible instead of hiding in one long stream.

    engine = get_engine("espeak", settings)
    take = engine.synthesize(["Xin chào bà con."], voice="vi", rate_pct=0)
    take.clips[0]  # float32 mono samples at take.sample_rate

Failures are ``playout.errors.EngineError`` (this engine failed this time: the chain tries the next one)
or ``EngineUnavailable`` (it cannot run here at all).
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from playout.config import TtsSettings
from playout.errors import EngineUnavailable

if TYPE_CHECKING:  # numpy only where samples are made: the daemon checks scripts without it
    import numpy as np


@dataclass
class Take:
    """What one engine produced for one request."""

    engine: str
    voice: str
    rate_pct: int
    sample_rate: int
    clips: list[np.ndarray]
    notes: list[str] = field(default_factory=list)

    @property
    def speech_s(self) -> float:
        return sum(len(c) for c in self.clips) / self.sample_rate


class Engine(abc.ABC):
    """A text-to-speech engine.  Subclasses set ``name`` and implement ``synthesize``."""

    name: str = ""
    #: Syllables per second at rate +0 %, used to estimate reading time without synthesizing.
    #: Calibrated against real renders of the sample scripts (see tests/tts/test_estimate.py).
    syllables_per_s: float = 4.0

    def __init__(self, settings: TtsSettings):
        self.settings = settings

    @abc.abstractmethod
    def default_voice(self) -> str: ...

    @abc.abstractmethod
    def voices(self) -> Sequence[str]: ...

    def ready(self) -> bool:
        """A cheap guess (no synthesis, no network) whether this engine can read now, for estimates."""
        return True

    def voice_chain(self, wanted: str | None) -> list[str]:
        """Voices to try in order before the chain moves to the next engine."""
        return [self.pick_voice(wanted)]

    def pick_voice(self, wanted: str | None) -> str:
        """The voice to use: the script's or the station's if this engine has it, else the default."""
        for candidate in (wanted, self.settings.voice):
            if candidate and candidate in self.voices():
                return candidate
        return self.default_voice()

    @abc.abstractmethod
    def synthesize(self, sentences: Sequence[str], *, voice: str, rate_pct: int) -> Take:
        """One clip per sentence, leading and trailing silence trimmed."""

    def close(self) -> None:  # noqa: B027 - optional hook; most engines hold nothing
        """Release anything the engine holds (processes, sessions)."""


_FACTORIES: dict[str, Callable[[TtsSettings], Engine]] = {}

#: The engines shipped with the station, by module and class.  Each is imported only when asked for:
#: Edge brings aiohttp and edge-tts, Piper onnxruntime, and a render that uses espeak needs neither.
_BUILTIN: dict[str, tuple[str, str]] = {
    "espeak": ("tts.engines.espeak", "EspeakEngine"),
    "piper": ("tts.engines.piper", "PiperEngine"),
    "edge": ("tts.engines.edge", "EdgeEngine"),
}


def register(name: str, factory: Callable[[TtsSettings], Engine]) -> None:
    _FACTORIES[name] = factory


def get_engine(name: str, settings: TtsSettings) -> Engine:
    factory = _FACTORIES.get(name) or _load_builtin(name)
    if factory is None:
        raise EngineUnavailable(
            f"Bộ đọc '{name}' chưa có trong phiên bản này",
            detail=f"no engine registered as {name!r}",
            engine=name,
        )
    return factory(settings)


def available_engines() -> list[str]:
    """Every engine's name, importing them all (the daemon calls this in its main thread at start-up,
    so no worker thread ever imports an engine while another imports something it shares)."""
    for name in _BUILTIN:
        _load_builtin(name)
    return sorted(_FACTORIES)


def _load_builtin(name: str) -> Callable[[TtsSettings], Engine] | None:
    if name not in _BUILTIN:
        return None
    module, cls = _BUILTIN[name]
    factory = getattr(importlib.import_module(module), cls)
    # setdefault: an engine a test or plug-in registered under a built-in name keeps precedence.
    return _FACTORIES.setdefault(name, factory)
