import datetime as dt
from pathlib import Path

import pytest

from playout.config import load_config, parse_config
from playout.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_schedule_is_valid_and_matches_the_plans():
    cfg = load_config(ROOT / "schedule.yaml")
    assert cfg.bulletin.length_s == 180
    assert [(w.start, w.end) for w in cfg.windows] == [
        (dt.time(6, 0), dt.time(6, 30)),
        (dt.time(17, 0), dt.time(17, 30)),
    ]
    assert cfg.relay.active_high is False
    assert cfg.paths.bulletins == ROOT / "bulletins"


def test_every_error_is_reported_with_its_key_path():
    data = {
        "timezone": "Mars/Olympus",
        "bulletin": {"length_s": "ba phút", "loudnes_lufs": -16},
        "windows": [{"name": "sáng", "start": "07:00", "end": "06:00"}, {"start": "25:00", "end": "26:00"}],
        "relay": {"pin": 99},
        "tts": {"engines": ["espeak", "google"]},
    }
    with pytest.raises(ConfigError) as err:
        parse_config(data, base=Path("."))
    paths = [p.split(":")[0] for p in err.value.problems]
    for expected in (
        "timezone",
        "bulletin.length_s",
        "bulletin.loudnes_lufs",
        "windows.0",
        "windows.1.name",
        "windows.1.start",
        "relay.pin",
        "tts.engines.1",
    ):
        assert expected in paths, (expected, paths)
    assert "Tệp cấu hình" in err.value.message  # operators read Vietnamese


def test_unquoted_yaml_times_and_short_forms(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("windows:\n  - {name: a, start: 06:00, end: 6h30}\n", "utf-8")
    (w,) = load_config(f).windows
    assert (w.start, w.end) == (dt.time(6), dt.time(6, 30))


def test_relative_paths_follow_the_config_file(tmp_path):
    f = tmp_path / "etc" / "schedule.yaml"
    f.parent.mkdir()
    f.write_text("paths: {data: ../data}\n", "utf-8")
    cfg = load_config(f)
    assert cfg.paths.data == tmp_path / "data"
    assert cfg.paths.bulletins == f.parent / "bulletins"


@pytest.mark.parametrize(
    "content, code",
    [
        (b"windows: [\n  - {name: a", "CONFIG_SYNTAX"),
        (b"\xff\xfe\x00junk", "CONFIG_ENCODING"),
        (b"- just\n- a list\n", "CONFIG_INVALID"),
        (b"x" * 1_000_001, "CONFIG_TOO_LARGE"),
        (b"!!python/object/apply:os.system ['true']", "CONFIG_SYNTAX"),
    ],
)
def test_unreadable_configs_are_refused_clearly(tmp_path, content, code):
    f = tmp_path / "schedule.yaml"
    f.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_config(f)
    assert err.value.code == code


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nope.yaml")
    assert err.value.code == "CONFIG_UNREADABLE"
