"""A bulletin's public "listen again" page: one folder to upload to the ward portal or share in Zalo.

The ward plans share every bulletin beyond the loudspeakers: on the ward's web portal, in Zalo and
Facebook groups, behind the QR code on the notice boards ("Nghe – Quét – Thực hành").  This module turns
a ready bulletin into a folder that needs nothing else::

    <slug>/index.html    title, the text, an <audio> with both files, the steps, the QR code and its link
    <slug>/<slug>.opus   32 kbit/s mono Opus (Ogg): small, for browsers that play it (tried first)
    <slug>/<slug>.mp3    64 kbit/s mono MP3 (CBR): plays everywhere, and in Zalo as a file
    <slug>/qr.png        the bulletin's QR code (the same as /api/bulletins/{id}/qr.png)
    <slug>/qr.svg        the same code, for print

``<slug>`` is the last segment of the QR target ``playout.qr.bulletin_link`` computes for a bulletin
without a ``link:`` (``<title-slug>-<first 8 hex of the id>``), so a folder uploaded under the station's
``qr.base_url`` is exactly where those codes point.  Every address in the page is relative (or the QR
target itself): it works opened from the folder, served by the station (``/share/<slug>/``) or by any
static web server.  No script, no web font, no CDN; office text is escaped (autoescape).

The folder is written next to its final place under a hidden temporary name and renamed into place, so
a reader (the station serving it, a person copying it) sees the old export or the new one, never half of
one.  ffmpeg runs as a child process, niced, one thread, with a timeout; its failures are ``ShareError``s
with stable codes and Vietnamese messages.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import functools
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import unicodedata
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from playout import qr
from playout.atomic import atomic_write_bytes
from playout.errors import PlayoutError, StorageUnavailable
from playout.intake import TOPICS

if TYPE_CHECKING:
    from playout.library import Bulletin

logger = logging.getLogger(__name__)

TEMPLATES = qr.TEMPLATES / "share"
#: What a share folder's name looks like: ``playout.qr.slugify`` output, a hyphen, 8 hex digits.
SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MAX_SLUG_CHARS = qr.MAX_SLUG_CHARS + 9
#: Speech, not music: mono, and rates a phone on 3G streams without waiting.  A 3-minute bulletin is
#: about 1.4 MB as MP3 and 0.5–0.7 MB as Opus.
MP3_BITRATE = "64k"
OPUS_BITRATE = "32k"
#: Per file.  A 3-minute bulletin encodes in seconds on a Pi 3; this only stops a hung ffmpeg.
ENCODE_TIMEOUT_S = 120.0
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".mp3": "audio/mpeg",
    ".opus": "audio/ogg; codecs=opus",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".zip": "application/zip",
}
STEPS = (
    ("Nghe", "bản tin trên loa phường, hoặc bấm nghe lại ngay trên trang này."),
    ("Quét", "mã QR bằng máy ảnh điện thoại hoặc Zalo (hoặc bấm vào đường dẫn) để mở hướng dẫn."),
    ("Thực hành", "từng bước theo hướng dẫn ngay trên điện thoại của mình; cần giúp, hỏi cán bộ phường."),
)

# One export at a time in this process: two ffmpeg runs at once would compete with the on-air audio on a
# Pi's few cores, and the swap of an existing folder must not race another swap of it.
_LOCK = threading.Lock()


class ShareError(PlayoutError):
    """The page or its audio could not be made; nothing was changed in the share folder."""

    code = "SHARE_FAILED"
    # The station failed (ffmpeg missing, an encode that broke), not the request.
    http_status = 500


class ShareRefused(PlayoutError):
    """This bulletin cannot be shared yet: its audio is not ready, or its QR code has no target."""

    code = "SHARE_REFUSED"
    http_status = 409


@dataclasses.dataclass(frozen=True)
class SharedPage:
    """What ``export_bulletin`` wrote."""

    slug: str
    folder: Path
    #: file name → size in bytes, in the order the page lists them
    files: dict[str, int]
    #: what the QR code opens (the bulletin's ``link:``, or the page's place under ``qr.base_url``)
    qr_target: str
    #: where the page is once the folder is uploaded under ``qr.base_url`` (None without a base URL)
    public_url: str | None

    def as_dict(self) -> dict:
        return {
            "slug": self.slug,
            "files": [{"name": name, "bytes": size} for name, size in self.files.items()],
            "qr_target": self.qr_target,
            "public_url": self.public_url,
        }


# ---------------------------------------------------------------------------------------------------
# Names


def share_slug(bulletin: Bulletin) -> str:
    """The folder's name: the last segment of the QR target for a bulletin without a ``link:``
    (``playout.qr.bulletin_link``): ``<title-slug>-<first 8 hex of the id>``."""
    return f"{qr.slugify(bulletin.title) or 'ban-tin'}-{bulletin.id[:8].lower()}"


def share_files(slug: str) -> tuple[str, ...]:
    """Every file a share folder may hold (the station serves these names and nothing else); the last
    is the whole folder as one zip, for the ward's portal or a Zalo group."""
    return ("index.html", f"{slug}.mp3", f"{slug}.opus", "qr.png", "qr.svg", f"{slug}.zip")


def public_url(bulletin: Bulletin, base_url: str | None) -> str | None:
    """The page's address under the ward portal's ``base_url``, or None without a usable one."""
    base = (base_url or "").strip()
    parts = urlsplit(base)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return f"{base.rstrip('/')}/{share_slug(bulletin)}"


# ---------------------------------------------------------------------------------------------------
# Audio


def _tag(text: str) -> str:
    # Metadata goes into argv (no shell); control characters would only garble a player's display.
    return " ".join("".join(" " if unicodedata.category(c)[0] == "C" else c for c in text).split())[:200]


def _encode(
    ffmpeg: str, wav: Path, out: Path, codec: list[str], fmt: str, tags: dict[str, str], timeout_s: float
) -> None:
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-threads", "1"]
    command += ["-i", f"file:{wav}", "-map", "0:a:0", "-vn", "-map_metadata", "-1", "-ac", "1", *codec]
    for key, value in tags.items():
        command += ["-metadata", f"{key}={_tag(value)}"]
    # bitexact: no encoder version in the file, so the same WAV gives the same bytes on every Pi.
    command += ["-fflags", "+bitexact", "-flags:a", "+bitexact", "-f", fmt, f"file:{out}"]
    nice = shutil.which("nice")
    if nice:  # the on-air audio comes first
        command = [nice, "-n", "10", *command]
    try:
        proc = subprocess.run(command, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        seconds = f"{timeout_s:g}".replace(".", ",")  # Vietnamese decimal comma
        raise ShareError(
            f"Chuyển bản tin sang {out.suffix[1:].upper()} quá {seconds} giây nên đã dừng; "
            "trạm có thể đang quá tải, hãy thử lại sau.",
            code="SHARE_ENCODE_TIMEOUT",
            detail=f"ffmpeg timed out after {timeout_s:g} s on {wav}",
        ) from None
    except OSError as exc:
        raise ShareError(
            "Không chạy được ffmpeg để chuyển bản tin sang MP3/Opus.",
            code="SHARE_FFMPEG_MISSING",
            detail=f"{ffmpeg}: {exc}",
        ) from None
    stderr = proc.stderr.decode("utf-8", "replace").strip()
    if "No space left on device" in stderr:
        raise StorageUnavailable(
            "Hết dung lượng đĩa: chưa tạo được trang chia sẻ. Hãy giải phóng chỗ trống rồi thử lại.",
            code="SHARE_NO_SPACE",
            detail=stderr[-500:],
        )
    if proc.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        raise ShareError(
            f"ffmpeg không chuyển được bản tin sang {out.suffix[1:].upper()} (mã lỗi {proc.returncode}).",
            code="SHARE_ENCODE_FAILED",
            detail=stderr[-1000:] or f"exit {proc.returncode}, no output",
        )


def encode_audio(
    wav: Path, folder: Path, slug: str, tags: dict[str, str], *, ffmpeg: str | None = None, timeout_s: float
) -> None:
    """``<slug>.mp3`` and ``<slug>.opus`` from the bulletin's WAV, in ``folder``."""
    binary = ffmpeg or shutil.which("ffmpeg")
    # Checked here: behind ``nice`` a missing binary would only show as exit status 127.
    if not binary or not os.path.isfile(binary) or not os.access(binary, os.X_OK):
        raise ShareError(
            "Trạm chưa cài ffmpeg nên chưa chuyển được bản tin sang MP3/Opus (sudo apt install ffmpeg).",
            code="SHARE_FFMPEG_MISSING",
            detail=f"ffmpeg not found ({binary or 'not on PATH'})",
        )
    # MP3: constant bit rate, so every player knows the length at once; ID3v2.3 (UTF-16) shows the
    # Vietnamese title on older phones and Windows, which garble ID3v2.4's UTF-8.
    mp3 = ["-c:a", "libmp3lame", "-b:a", MP3_BITRATE, "-id3v2_version", "3"]
    _encode(binary, wav, folder / f"{slug}.mp3", mp3, "mp3", tags, timeout_s)
    opus = ["-c:a", "libopus", "-b:a", OPUS_BITRATE, "-vbr", "on"]
    _encode(binary, wav, folder / f"{slug}.opus", opus, "opus", tags, timeout_s)


# ---------------------------------------------------------------------------------------------------
# The page


_HEADING = re.compile(r"^\s*#{1,6}\s+")
_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_EMPHASIS = re.compile(r"(\*\*|__|\*|~~)(?=\S)(.+?)(?<=\S)\1")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


def _inline(line: str) -> str:
    return " ".join(_EMPHASIS.sub(r"\2", _MD_LINK.sub(r"\1", line)).replace("`", "").split())


def text_blocks(body: str, title: str = "") -> list[dict]:
    """The bulletin's text as blocks for the page: ``{"kind": "p"|"h"|"ul"|"ol", "lines": [...]}``.

    Paragraphs are separated by blank lines; lines in a paragraph stay lines (a script's line breaks
    are the author's).  Markdown headings and list items become headings and lists, emphasis and link
    markup is dropped (the words stay).  A first heading that repeats the title is left out.
    """
    blocks: list[dict] = []
    for chunk in re.split(r"\n\s*\n", unicodedata.normalize("NFC", body)):
        lines = [line for line in chunk.split("\n") if line.strip()]
        if not lines:
            continue
        if len(lines) == 1 and _HEADING.match(lines[0]):
            text = _inline(_HEADING.sub("", lines[0]))
            if text and not (not blocks and text.casefold() == title.casefold()):
                blocks.append({"kind": "h", "lines": [text]})
            continue
        if all(_ITEM.match(line) for line in lines):
            kind = "ul" if re.match(r"^\s*[-*+]", lines[0]) else "ol"
            blocks.append({"kind": kind, "lines": [_inline(_ITEM.sub("", line)) for line in lines]})
            continue
        blocks.append({"kind": "p", "lines": [_inline(_HEADING.sub("", line)) for line in lines]})
    return blocks


def _size_vi(size: int) -> str:
    """1 437 312 → "1,4 MB"; 512 000 → "512 KB" (Vietnamese decimal comma)."""
    if size >= 1_000_000:
        return f"{size / 1_000_000:.1f} MB".replace(".", ",")
    return f"{max(1, round(size / 1000))} KB"


def _minutes_vi(seconds: float) -> str:
    if seconds <= 0:
        return ""
    minutes, rest = divmod(round(seconds), 60)
    if not minutes:
        return f"{rest} giây"
    return f"{minutes} phút" + (f" {rest} giây" if rest else "")


@functools.cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,  # titles and text come from office files
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def page_html(
    bulletin: Bulletin,
    *,
    slug: str,
    qr_target: str,
    page_url: str | None,
    station_name: str,
    programme: str,
    sizes: dict[str, int],
    tz: dt.tzinfo | None = None,
) -> str:
    """The share page (HTML); every address in it is relative except the QR target."""
    first, second = qr.summary_lines(bulletin.script.body)
    return (
        _environment()
        .get_template("index.html")
        .render(
            title=bulletin.title,
            programme=programme,
            station_name=station_name,
            topic=TOPICS.get(bulletin.topic or ""),
            department=bulletin.script.meta.department,
            approved=bulletin.approved_at.astimezone(tz).strftime("%d/%m/%Y"),
            length=_minutes_vi(bulletin.duration_s),
            summary=" ".join(line for line in (first, second) if line),
            blocks=text_blocks(bulletin.script.body, bulletin.title),
            mp3=f"{slug}.mp3",
            opus=f"{slug}.opus",
            mp3_size=_size_vi(sizes[f"{slug}.mp3"]),
            bundle=f"{slug}.zip",
            opus_size=_size_vi(sizes[f"{slug}.opus"]),
            qr_target=qr_target,
            # The code leads back to this page (no ``link:``): say so, not "open the guide".
            qr_is_page=page_url is not None and qr_target == page_url,
            page_url=page_url,
            motto=qr.MOTTO,
            steps=STEPS,
        )
    )


# ---------------------------------------------------------------------------------------------------
# The folder


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some filesystems cannot fsync a folder
        pass
    finally:
        os.close(fd)


def _write_bundle(folder: Path, slug: str) -> None:
    """``<slug>.zip``: the page and its files under ``<slug>/``, to upload or send as they are.  The
    audio is stored (already compressed); the page and the SVG are deflated."""
    with zipfile.ZipFile(folder / f"{slug}.zip", "w") as bundle:
        for name in share_files(slug)[:-1]:
            kind = zipfile.ZIP_DEFLATED if name.endswith((".html", ".svg")) else zipfile.ZIP_STORED
            # A fixed date and mode: the same bulletin exports to the same bytes, whenever it is shared.
            info = zipfile.ZipInfo(f"{slug}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = kind
            bundle.writestr(info, (folder / name).read_bytes())


def remove_share(root: Path | str, bulletin_id: str) -> list[str]:
    """Delete the share folder(s) of a bulletin (withdrawn: its page must not stay on the station's disk,
    nor be uploaded again by mistake) and their leftovers; the names removed."""
    root, removed = Path(root), []
    suffix = f"-{bulletin_id[:8].lower()}"
    with _LOCK:
        try:
            found = [p for p in root.iterdir() if p.name.lstrip(".").split(".")[0].endswith(suffix)]
        except OSError:
            return []
        for path in found:
            if path.is_symlink() or not path.is_dir():
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    if removed:
        logger.info("share page of bulletin %s removed: %s", bulletin_id[:12], ", ".join(removed))
    return removed


def _clear_leftovers(root: Path, slug: str) -> None:
    """Temporary and replaced folders a power cut left behind for this slug."""
    for leftover in root.glob(f".{slug}.*"):
        if leftover.is_dir() and not leftover.is_symlink():
            logger.info("removing a leftover share folder %s", leftover.name)
            shutil.rmtree(leftover, ignore_errors=True)


def _write_failed(exc: OSError, root: Path) -> PlayoutError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageUnavailable(
            "Hết dung lượng đĩa: chưa tạo được trang chia sẻ. Hãy giải phóng chỗ trống rồi thử lại.",
            code="SHARE_NO_SPACE",
            detail=str(exc),
        )
    return ShareError(
        "Không ghi được thư mục trang chia sẻ trên thẻ nhớ của trạm.",
        code="SHARE_WRITE_FAILED",
        detail=f"{root}: {exc}",
    )


def export_bulletin(
    bulletin: Bulletin,
    out_dir: Path | str,
    *,
    base_url: str | None,
    station_name: str,
    programme: str = qr.DEFAULT_PROGRAMME,
    tz: dt.tzinfo | None = None,
    ffmpeg: str | None = None,
    timeout_s: float = ENCODE_TIMEOUT_S,
) -> SharedPage:
    """Write ``out_dir/<slug>/`` (page, MP3, Opus, QR code) for a ready bulletin; replace an older one.

    ``ShareRefused`` (409) when the bulletin has no audio yet or its QR code has no target (no
    ``link:`` and no ``base_url``); ``ShareError`` (500) when ffmpeg is missing, fails or hangs, or the
    folder cannot be written; ``StorageUnavailable`` when the disk is full.  On any of these the share
    folder is as it was.  ``tz``: the station's time zone, for the approval date the page shows.
    """
    wav = bulletin.audio_path
    if bulletin.status != "ready" or wav is None or not Path(wav).is_file():
        raise ShareRefused(
            f"Bản tin “{bulletin.title}” chưa đọc xong thành âm thanh nên chưa tạo được trang chia sẻ.",
            code="SHARE_NOT_READY",
        )
    try:
        target = qr.bulletin_link(bulletin, base_url)
    except ValueError as exc:
        raise ShareRefused(str(exc), code="SHARE_NO_LINK") from None
    slug = share_slug(bulletin)
    root = Path(out_dir)
    tags = {"title": bulletin.title, "artist": station_name, "album": programme, "language": "vie"}
    with _LOCK:
        try:
            root.mkdir(parents=True, exist_ok=True)
            _clear_leftovers(root, slug)
            tmp = Path(tempfile.mkdtemp(prefix=f".{slug}.", suffix=".tmp", dir=root))
        except OSError as exc:
            raise _write_failed(exc, root) from None
        old: Path | None = None
        try:
            encode_audio(Path(wav), tmp, slug, tags, ffmpeg=ffmpeg, timeout_s=timeout_s)
            atomic_write_bytes(tmp / "qr.png", qr.qr_png(target))
            atomic_write_bytes(tmp / "qr.svg", qr.qr_svg(target))
            sizes = {name: (tmp / name).stat().st_size for name in share_files(slug)[1:-1]}
            html = page_html(
                bulletin,
                slug=slug,
                qr_target=target,
                page_url=public_url(bulletin, base_url),
                station_name=station_name,
                programme=programme,
                sizes=sizes,
                tz=tz,
            )
            atomic_write_bytes(tmp / "index.html", html.encode("utf-8"))
            _write_bundle(tmp, slug)
            for name in share_files(slug):
                os.chmod(tmp / name, 0o644)
                _fsync(tmp / name)
            os.chmod(tmp, 0o755)  # mkdtemp made it 0700; a web server (or a copy) must read it
            _fsync(tmp)
            final = root / slug
            if final.exists():
                # Two renames: the old folder aside, the new one in.  A power cut between them leaves
                # the old one as a hidden leftover, removed by the next export of this bulletin.
                old = root / f".{slug}.{os.urandom(4).hex()}.old"
                os.rename(final, old)
            os.rename(tmp, final)
            _fsync(root)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if old is not None and not (root / slug).exists():
                with contextlib.suppress(OSError):
                    os.rename(old, root / slug)
            raise _write_failed(exc, root) from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    files = {name: (final / name).stat().st_size for name in share_files(slug)}
    logger.info(
        "share page of bulletin %s written to %s (%d bytes)", bulletin.id[:12], final, sum(files.values())
    )
    return SharedPage(slug, final, files, target, public_url(bulletin, base_url))
