"""The station's settings, declared as data and validated with pydantic.

``schedule.yaml`` is the one file a technician edits.  Every problem in it is reported at once, each
with its key path (``windows.1.start: …``), so a broken file is fixed in one pass, not one error at a
time.  Relative paths are resolved against the folder of the file they came from, so ``playout run
--config /etc/playout/schedule.yaml`` behaves the same from any working directory.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# Not playout.auth: that module brings FastAPI, and every short command reads the settings.
from playout.accounts import AuthSettings
from playout.errors import ConfigError
from playout.report_settings import ReportSettings

logger = logging.getLogger(__name__)

MAX_CONFIG_BYTES = 1_000_000
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Section(BaseModel):
    # A misspelt key is a mistake worth reporting, not something to ignore silently.
    # hide_input_in_errors: a password pasted into password_hash must never reach a log via an error.
    model_config = ConfigDict(extra="forbid", validate_default=True, hide_input_in_errors=True)


#: The default outro invites listeners to scan the bulletin's QR code; without a link there is none.
DEFAULT_OUTRO = (
    "Bà con hãy quét mã QR dán tại nhà văn hóa và bảng tin tổ dân phố để xem hướng dẫn chi tiết. "
    "Nghe, quét, thực hành."
)
NO_LINK_OUTRO = "Xin cảm ơn bà con đã lắng nghe."


class BulletinSettings(_Section):
    length_s: float = Field(180.0, gt=10, le=1800, description="exact length of every air-ready bulletin")
    loudness_lufs: float = Field(-16.0, ge=-40, le=-5, description="integrated loudness (ITU-R BS.1770)")
    true_peak_dbtp: float = Field(-1.0, ge=-12, le=0)
    loudness_tolerance_lu: float = Field(0.5, gt=0, le=3)
    sample_rate: Literal[16000, 22050, 24000, 44100, 48000] = 24000
    rate_min_pct: int = Field(-10, ge=-50, le=0, description="slowest speaking rate fitting may use")
    rate_max_pct: int = Field(15, ge=0, le=100, description="fastest speaking rate fitting may use")
    sentence_pause_s: tuple[float, float] = (0.45, 1.0)
    paragraph_pause_s: tuple[float, float] = (0.9, 1.6)
    fade_s: float = Field(2.5, ge=1.5, le=10)
    max_silence_s: float = Field(3.0, gt=0.5, le=10, description="longest dead air allowed before the fade")
    short_fill_warning_s: float = Field(20.0, ge=0)
    programme_name: str = Field("Học số mỗi ngày 3 phút", min_length=1, max_length=200)
    lead_in: str = Field("Chuyên mục {programme}. {title}", max_length=500)
    outro: str = Field(DEFAULT_OUTRO, max_length=1000)
    outro_no_link: str | None = Field(
        None,
        max_length=1000,
        description="the outro of a bulletin with no link (and no qr.base_url): nothing to scan. Unset: "
        "a polite close instead of the default outro's QR invitation; a custom outro is kept as is",
    )
    repeat_short: bool = Field(
        True, description="read a short body twice (loudspeakers repeat) when it fits, instead of a long fill"
    )
    repeat_phrase: str = Field("Xin nhắc lại.", min_length=1, max_length=200)
    music_bed: Path | None = Field(None, description="audio file played softly under the fill")
    bed_level_db: float = Field(-20.0, ge=-40, le=-6, description="bed level relative to the speech")

    def outro_for(self, has_link: bool) -> str:
        """What closes a bulletin: the QR invitation only when there is something to scan."""
        if has_link:
            return self.outro
        if self.outro_no_link is not None:
            return self.outro_no_link
        return NO_LINK_OUTRO if self.outro == DEFAULT_OUTRO else self.outro

    @model_validator(mode="after")
    def _bounds_ordered(self) -> BulletinSettings:
        for name in ("sentence_pause_s", "paragraph_pause_s"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi <= self.max_silence_s:
                raise ValueError(f"{name}: cần 0 ≤ tối thiểu ≤ tối đa ≤ max_silence_s")
        return self


class Window(_Section):
    name: str = Field(min_length=1, max_length=50)
    start: dt.time
    end: dt.time
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=lambda: list(DAYS)
    )
    plays: int = Field(1, ge=1, le=10, description="bulletins aired back to back in this window")
    from_date: dt.date | None = Field(None, description="first day this window airs (inclusive)")
    until_date: dt.date | None = Field(None, description="last day this window airs (inclusive)")

    def airs_on(self, day: dt.date, blackout: set[dt.date] | frozenset = frozenset()) -> bool:
        return (
            DAYS[day.weekday()] in self.days
            and (self.from_date is None or day >= self.from_date)
            and (self.until_date is None or day <= self.until_date)
            and day not in blackout
        )

    @property
    def length_s(self) -> float:
        start = dt.datetime.combine(dt.date.min, self.start)
        return (dt.datetime.combine(dt.date.min, self.end) - start).total_seconds()

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock_time(cls, value: object) -> object:
        # YAML 1.1 reads an unquoted 06:00 as the base-60 integer 360; take it back as a clock time.
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
            return dt.time(value // 60, value % 60)
        if isinstance(value, str) and re.fullmatch(r"\d{1,2}[:h]\d{2}(:\d{2})?", value.strip()):
            hours, rest = re.split(r"[:h]", value.strip(), maxsplit=1)
            return f"{int(hours):02d}:{rest}"
        return value

    @model_validator(mode="after")
    def _start_before_end(self) -> Window:
        if self.start >= self.end:
            raise ValueError("start phải sớm hơn end")
        if self.from_date and self.until_date and self.from_date > self.until_date:
            raise ValueError("from_date phải trước until_date")
        return self


class DaemonSettings(_Section):
    emergency_cuts: bool = Field(
        False, description="an emergency bulletin cuts the one on air instead of waiting"
    )
    rescan_s: float = Field(30.0, ge=1, le=3600, description="how often the library is checked for changes")


class RelaySettings(_Section):
    pin: int = Field(17, ge=0, le=53, description="BCM pin number driving the relay module")
    active_high: bool = False
    pre_roll_s: float = Field(3.0, ge=0, le=30)
    tail_s: float = Field(2.0, ge=0, le=30)
    max_on_s: float = Field(600.0, gt=0, le=7200)


class AudioSettings(_Section):
    device: str | int | None = None


class TtsSettings(_Section):
    engines: list[Literal["edge", "espeak", "piper"]] = Field(
        default_factory=lambda: ["edge", "espeak"], min_length=1
    )
    voice: str = "vi-VN-HoaiMyNeural"
    espeak_voice: Literal["vi", "vi-vn-x-central", "vi-vn-x-south"] = "vi"
    espeak_wpm: int = Field(165, ge=80, le=400, description="espeak-ng speed at rate +0 %")
    edge_attempt_timeout_s: float = Field(
        45.0, gt=0, le=600, description="bound on one Edge request (the client can hang after the handshake)"
    )
    edge_retries: int = Field(1, ge=0, le=5, description="retries per voice for transient faults")
    edge_backoff_s: float = Field(1.0, ge=0, le=60, description="first retry delay; doubles each retry")
    edge_outage_s: float = Field(
        300.0, ge=0, le=86400, description="after the service fails, skip it for this long (offline renders)"
    )
    piper_model: Path | None = Field(None, description="Piper voice model (.onnx, with .onnx.json beside it)")
    render_memory_mb: int = Field(
        1024, ge=192, le=16384, description="address-space limit of a render worker (virtual memory, MB)"
    )
    render_timeout_s: float = Field(
        600.0, ge=10, le=7200, description="a render worker on one bulletin longer than this is stopped"
    )


class ApiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)


class PathSettings(_Section):
    bulletins: Path = Path("bulletins")
    data: Path = Path("var")
    # The operators' own words (how to say "VNeID", a ward's place names), on top of the shipped lexicon;
    # watched while the station runs. A missing file is fine.
    lexicon: Path = Path("lexicon.tsv")


class QrSettings(_Section):
    base_url: str | None = Field(None, description="QR target for bulletins without a link: BASE/slug")
    station_name: str = Field("Đài truyền thanh phường", max_length=200)


class BrokerSettings(_Section):
    """The centre's MQTT broker: status out, doorbell in (never content: see playout/fleet/mqtt.py)."""

    host: str = Field(..., min_length=1, max_length=253)
    port: int = Field(1883, ge=1, le=65535)
    tls: bool = False
    # The centre's own CA for its broker (broker-ca.pem, installed with the TUF root): the only
    # certificate the station then trusts for it. Left out with tls: the system's CAs.
    ca_file: Path | None = None
    # The station's own MQTT account; its password is kept in a file (0600) so `playout config` can print
    # the settings as they are without printing a secret.
    username: str | None = Field(None, max_length=64, description="default: fleet.station_id")
    password_file: Path | None = None

    @model_validator(mode="after")
    def _ca_needs_tls(self) -> BrokerSettings:
        # A CA file with tls off would be a station that looks protected and sends its password in clear.
        if self.ca_file is not None and not self.tls:
            raise ValueError("ca_file chỉ dùng với tls: true (thiếu tls: true thì mật khẩu đi dạng rõ)")
        return self


class FleetSettings(_Section):
    """A station fed by a province or district centre (issue 14). Absent: a standalone ward station."""

    station_id: str = Field(..., pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="as the centre knows it")
    centre_url: str = Field(..., pattern=r"^https?://", max_length=500, description="the centre's address")
    # The TUF root the station was installed with: the one thing it trusts without asking the network.
    root: Path = Path("fleet-root.json")
    # The station's token for sending its as-run rows to the centre (a file, 0600, like the password).
    token_file: Path | None = None
    refresh_s: float = Field(300, ge=5, le=86400, description="how often to look for new content")
    broker: BrokerSettings | None = None


class StationConfig(_Section):
    timezone: str = "Asia/Ho_Chi_Minh"
    bulletin: BulletinSettings = Field(default_factory=BulletinSettings)
    windows: list[Window] = Field(
        default_factory=lambda: [
            Window(name="sáng", start=dt.time(6, 0), end=dt.time(6, 30)),
            Window(name="chiều", start=dt.time(17, 0), end=dt.time(17, 30)),
        ]
    )
    blackout_dates: list[dt.date] = Field(
        default_factory=list, description="no slots on these days (e.g. Tết)"
    )
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)
    relay: RelaySettings = Field(default_factory=RelaySettings)
    audio: AudioSettings = Field(default_factory=AudioSettings)
    tts: TtsSettings = Field(default_factory=TtsSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    paths: PathSettings = Field(default_factory=PathSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    qr: QrSettings = Field(default_factory=QrSettings)
    fleet: FleetSettings | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"múi giờ không tồn tại: {value!r}") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def cache_dir(self) -> Path:
        return self.paths.data / "cache"

    def resolved(self, base: Path) -> StationConfig:
        """A copy whose relative paths are anchored at ``base`` (the config file's folder)."""

        def anchor(p: Path | None) -> Path | None:
            if p is None:
                return None
            p = Path(os.path.expanduser(p))
            return p if p.is_absolute() else (base / p).resolve()

        return self.model_copy(
            update={
                "paths": self.paths.model_copy(
                    update={
                        "bulletins": anchor(self.paths.bulletins),
                        "data": anchor(self.paths.data),
                        "lexicon": anchor(self.paths.lexicon),
                    }
                ),
                "bulletin": self.bulletin.model_copy(update={"music_bed": anchor(self.bulletin.music_bed)}),
                "tts": self.tts.model_copy(update={"piper_model": anchor(self.tts.piper_model)}),
                "fleet": None
                if self.fleet is None
                else self.fleet.model_copy(
                    update={
                        "root": anchor(self.fleet.root),
                        "token_file": anchor(self.fleet.token_file),
                        "broker": None
                        if self.fleet.broker is None
                        else self.fleet.broker.model_copy(
                            update={
                                "password_file": anchor(self.fleet.broker.password_file),
                                "ca_file": anchor(self.fleet.broker.ca_file),
                            }
                        ),
                    }
                ),
            }
        )


# Operators read these; pydantic's own English text is kept as a fallback for rarer kinds of error.
_MESSAGES_VI = {
    "missing": "thiếu giá trị bắt buộc",
    "extra_forbidden": "khóa không được hỗ trợ (gõ nhầm tên?)",
    "literal_error": "giá trị không hợp lệ",
    "int_parsing": "phải là số nguyên",
    "int_type": "phải là số nguyên",
    "float_parsing": "phải là số",
    "float_type": "phải là số",
    "bool_parsing": "phải là true hoặc false",
    "bool_type": "phải là true hoặc false",
    "time_parsing": "phải là giờ dạng HH:MM",
    "time_type": "phải là giờ dạng HH:MM",
    "greater_than": "quá nhỏ",
    "greater_than_equal": "quá nhỏ",
    "less_than": "quá lớn",
    "less_than_equal": "quá lớn",
    "string_too_short": "không được để trống",
    "string_too_long": "quá dài",
    "too_short": "cần ít nhất một phần tử",
    "list_type": "phải là một danh sách",
    "model_type": "phải là một mục gồm các khóa",
    "dict_type": "phải là một mục gồm các khóa",
    "string_type": "phải là chuỗi ký tự",
    "string_pattern_mismatch": "không đúng định dạng",
}


def _describe(err: dict[str, Any]) -> str:
    path = ".".join(str(p) for p in err["loc"]) or "(gốc)"
    kind = err.get("type", "")
    if kind == "value_error":
        text = str(err.get("ctx", {}).get("error", err["msg"]))
    else:
        text = _MESSAGES_VI.get(kind, err["msg"])
        limit = err.get("ctx", {})
        for key in ("gt", "ge", "lt", "le", "expected"):
            if key in limit:
                text += f" ({key} {limit[key]})"
                break
    got = err.get("input")
    if (
        kind not in ("missing", "value_error")
        and isinstance(got, str | int | float | bool)
        and len(str(got)) < 60
    ):
        text += f"; đang là {got!r}"
    return f"{path}: {text}"


def parse_config(data: object, *, base: Path, source: str = "schedule.yaml") -> StationConfig:
    """Validate already-loaded YAML data; raises ConfigError listing every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"Tệp cấu hình {source} phải là một bảng khóa: giá trị",
            problems=["(gốc): phải là một mục gồm các khóa"],
        )
    try:
        cfg = StationConfig.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(e) for e in exc.errors()]
        raise ConfigError(
            f"Tệp cấu hình {source} có {len(problems)} lỗi:\n" + "\n".join(f"  - {p}" for p in problems),
            problems=problems,
            detail=str(exc),
        ) from None
    return cfg.resolved(base)


def load_config(path: Path | str | None = None) -> StationConfig:
    """Read ``schedule.yaml`` (or the embedded defaults when ``path`` is None)."""
    if path is None:
        return StationConfig().resolved(Path.cwd())
    path = Path(path)
    try:
        raw = path.read_bytes()[: MAX_CONFIG_BYTES + 1]
    except OSError as exc:
        raise ConfigError(
            f"Không đọc được tệp cấu hình {path}: {exc.strerror}", code="CONFIG_UNREADABLE", detail=str(exc)
        ) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"Tệp cấu hình {path} quá lớn (tối đa 1 MB)", code="CONFIG_TOO_LARGE")
    try:
        data = yaml.safe_load(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError(
            f"Tệp cấu hình {path} phải được lưu bằng mã UTF-8", code="CONFIG_ENCODING"
        ) from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (dòng {where.line + 1}, cột {where.column + 1})" if where else ""
        raise ConfigError(
            f"Tệp cấu hình {path} sai cú pháp YAML{at}",
            code="CONFIG_SYNTAX",
            detail=str(exc),
            problems=[f"yaml{at}: {getattr(exc, 'problem', exc)}"],
        ) from None
    return parse_config(data, base=path.resolve().parent, source=str(path))


RELAY_RECORD = "relay.json"


def record_relay(data_dir: Path, settings: RelaySettings) -> None:
    """Note the relay the station claimed, for ``playout relay-off`` when schedule.yaml is unreadable."""
    import json

    from playout.atomic import atomic_write_text

    atomic_write_text(Path(data_dir) / RELAY_RECORD, json.dumps(settings.model_dump(mode="json")))


def relay_record(data_dir: Path) -> RelaySettings | None:
    import json

    try:
        return RelaySettings.model_validate(json.loads((Path(data_dir) / RELAY_RECORD).read_text("utf-8")))
    except (OSError, ValueError):
        return None
