import subprocess

import numpy as np
import pytest

from playout.errors import RenderError
from tests.conftest import require
from tts.audio import frame_rms_db
from tts.bed import generated_bed, music_bed

RATE = 24000


def test_generated_bed_is_even_and_never_silent():
    bed = generated_bed(30, RATE)
    assert len(bed) == 30 * RATE
    assert np.sqrt(np.mean(bed.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-3)
    levels = frame_rms_db(bed, RATE)
    assert levels.max() - levels.min() < 10  # a pad, not pulses


def test_music_bed_from_an_mp3_loops_to_length(tmp_path):
    ffmpeg = require("ffmpeg")
    mp3 = tmp_path / "bed.mp3"
    subprocess.run(
        [
            ffmpeg,
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=330:duration=4",
            "-ac",
            "1",
            str(mp3),
        ],
        check=True,
    )
    bed = music_bed(mp3, 11.0, RATE)
    assert len(bed) == 11 * RATE
    # Loop joins are cross-faded: no 50 ms frame drops out.
    assert frame_rms_db(bed, RATE).min() > -20


def test_unreadable_music_bed_is_a_clear_error(tmp_path):
    junk = tmp_path / "bed.mp3"
    junk.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(RenderError) as err:
        music_bed(junk, 5, RATE)
    assert err.value.code == "MUSIC_BED_UNREADABLE"
    with pytest.raises(RenderError):
        music_bed(tmp_path / "missing.mp3", 5, RATE)
