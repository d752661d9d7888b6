"""The voices the station knows, per engine.

A whitelist, not a convenience: edge-tts writes the voice name into its SSML unescaped, so a voice string
from a script's front matter or an upload must never reach an engine unless it is listed here.
"""

from __future__ import annotations

EDGE_VOICES = {
    "vi-VN-HoaiMyNeural": "nữ, giọng Bắc (Hoài My)",
    "vi-VN-NamMinhNeural": "nam, giọng Bắc (Nam Minh)",
}
ESPEAK_VOICES = {
    "vi": "espeak-ng, giọng Bắc",
    "vi-vn-x-central": "espeak-ng, giọng Trung",
    "vi-vn-x-south": "espeak-ng, giọng Nam",
}
VOICES_BY_ENGINE = {"edge": EDGE_VOICES, "espeak": ESPEAK_VOICES}
ALL_VOICES = {**EDGE_VOICES, **ESPEAK_VOICES}


def is_known_voice(name: str) -> bool:
    return name in ALL_VOICES


def engine_of(voice: str) -> str | None:
    for engine, voices in VOICES_BY_ENGINE.items():
        if voice in voices:
            return engine
    return None
