"""A full SD card: renders that failed for lack of space are tried again when space returns.
A real full disk: a small tmpfs (the tests run as root, as CI does)."""

from __future__ import annotations

import os
import subprocess

import pytest

from playout.library import NO_SPACE, Library
from tests.station import write_script
from tts.worker import RenderWorker


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "sd"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.fail("this test mounts a tmpfs: run it as root (CI does)")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder):
    """Write until the disk refuses; returns the filler file."""
    filler = folder / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    return filler


def test_a_render_that_failed_for_lack_of_space_is_retried_when_space_returns(
    make_config, tmp_path, small_disk
):
    write_script(tmp_path / "bulletins" / "approved", "a.md", "Bà con chú ý. Xin cảm ơn.", title="Tin")
    config = make_config(
        bulletin={"length_s": 11, "lead_in": "", "outro": ""}, paths={"data": str(small_disk / "var")}
    )
    library = Library(config, RenderWorker(memory_mb=768, timeout_s=120))
    (bulletin,) = library.scan()
    (small_disk / "var").mkdir(exist_ok=True)
    filler = fill(small_disk)
    assert library.render_pending() == 0
    assert bulletin.status == "failed" and bulletin.error == NO_SPACE
    assert library.retry_when_space() == 1 and bulletin.status == "pending"
    assert library.render_pending() == 0 and bulletin.error == NO_SPACE  # still full: fails the same way
    filler.unlink()
    assert library.retry_when_space() == 1
    assert library.render_pending() == 1 and bulletin.status == "ready"
    assert bulletin.audio_path.is_relative_to(small_disk)
