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
ALL_VOICES = {**EDGE_VOICES, **ESPEAK_VOICES}
