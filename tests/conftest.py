"""Shared fixtures: real parts only (espeak-ng, ffmpeg, SQLite, files in a temporary folder)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The sample scripts shipped with the station (copies of ../shared/samples).
SAMPLES = ROOT / "bulletins" / "approved"

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def make_config(tmp_path):
    """A StationConfig whose data lives in tmp_path; keyword sections override the defaults."""
    from playout.config import parse_config

    def make(**sections):
        data = {"paths": {"data": str(tmp_path / "var"), "bulletins": str(tmp_path / "bulletins")}}
        data["tts"] = {"engines": ["espeak"]}
        # No air windows unless a test asks: the defaults (06:00, 17:00) would make a test station air
        # for real when the suite happens to run inside one of them.
        data["windows"] = []
        for key, value in sections.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return parse_config(data, base=tmp_path)

    return make


@pytest.fixture
def write_script(tmp_path):
    """Write a script file and return its path."""

    def write(name: str, text: str | bytes) -> Path:
        path = tmp_path / "scripts" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
        return path

    return write


@pytest.fixture(scope="session")
def playout_cmd():
    """The installed console script, as an operator would run it."""
    exe = Path(sys.executable).parent / "playout"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "playout"]


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:  # make setup installs it; a missing binary is a broken setup, not a skip
        pytest.fail(f"{binary} is not installed: run `make setup`")
    return path
