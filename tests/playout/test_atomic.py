import pytest

from playout.atomic import atomic_write_bytes, atomic_writer


def test_replace_is_all_or_nothing(tmp_path):
    target = tmp_path / "a" / "bulletin.wav"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError), atomic_writer(target) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("power cut")
    assert target.read_bytes() == b"old"
    assert [p.name for p in target.parent.iterdir()] == ["bulletin.wav"]  # no temp file left behind
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
