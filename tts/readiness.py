"""Whether each speech engine could read now, answered without loading any engine.

The on-air daemon shows this in health and on the web page, but it must not import the engines (Edge
brings aiohttp and edge-tts, Piper onnxruntime): rendering happens in a worker process.  The answers are
the engines' own cheap checks: espeak-ng installed, the Piper model and its settings file present (and
onnxruntime installed), the Edge service not in a remembered outage (``tts.outages``).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from tts import outages

if TYPE_CHECKING:
    from playout.config import TtsSettings


def espeak_ready() -> bool:
    return shutil.which("espeak-ng") is not None


def piper_ready(model: Path | None) -> bool:
    return (
        model is not None
        and Path(model).is_file()
        and Path(f"{model}.json").is_file()
        and importlib.util.find_spec("onnxruntime") is not None
    )


def edge_ready(memory: outages.OutageMemory) -> bool:
    return memory.remaining() <= 0


def engines_ready(settings: TtsSettings, data_dir: Path) -> dict[str, bool]:
    """Each engine of the configured chain: could it read now?"""
    memory = outages.OutageMemory(Path(data_dir) / outages.FILE_NAME)
    checks = {
        "espeak": espeak_ready,
        "piper": lambda: piper_ready(settings.piper_model),
        "edge": lambda: edge_ready(memory),
    }
    return {name: bool(checks[name]()) if name in checks else False for name in settings.engines}
