"""Script intake: a dropped or uploaded file → a validated ``Script``, or a clear refusal.

A script is a ``.txt``, ``.md``, ``.docx``, ``.doc`` (Word 97–2003) or ``.pdf`` (with a text layer) file;
the last two are read by Debian's antiword and pdftotext (``playout.documents``).  It may open with front
matter, between two ``---`` lines, in YAML::

    ---
    title: Tạo tài khoản trên Cổng Dịch vụ công quốc gia
    topic: dich-vu-cong
    department: Trung tâm Phục vụ hành chính công
    link: https://dichvucong.gov.vn
    air_from: 01/12/2026
    air_until: 2026-12-31
    priority: normal
    voice: vi-VN-HoaiMyNeural
    ---
    Kính thưa bà con! …

In a Word or PDF file the first paragraphs may instead read ``title: …``, ``topic: …`` (known keys only);
failing that, a .docx's own properties are used (title, keywords/category as topic, author as department).
A script whose front matter gives no title is shown under its own: a .docx's first Heading 1 (or Title
paragraph), else its first line of substance (a greeting such as "Kính thưa bà con!" skipped), shortened.

Every problem in the front matter is reported at once, so the operator fixes the file in one pass.  The
bytes' SHA-256 is kept: approval is pinned to it, so an edited file needs approving again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import hashlib
import io
import logging
import re
import unicodedata
import zipfile
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import yaml

from playout.errors import ScriptRejected
from playout.textcodec import clean_text, decode_script_bytes, normalize_vietnamese, tcvn3_to_unicode
from tts.voices import ALL_VOICES

logger = logging.getLogger(__name__)

MAX_SCRIPT_BYTES = 1_000_000
SCRIPT_SUFFIXES = (".txt", ".md", ".docx", ".doc", ".pdf")
MAX_FRONT_MATTER_BYTES = 64 * 1024
# A .docx is a zip: a 1 MB file can inflate to gigabytes, and python-docx turns every XML part into an lxml
# tree (memory) and walks every paragraph and run (time).  So every member is inflated once, counting the
# bytes as they come out (the sizes in the zip's headers are the sender's word, never believed), and the
# main part's paragraphs and runs are counted before python-docx parses anything.  A 3-minute bulletin is
# a third of an A4 page: its document.xml is tens of kB; these caps are a hundred times that.
MAX_DOCX_PART_BYTES = 4 * 1024 * 1024  # any member (an embedded picture is already compressed)
MAX_DOCX_XML_BYTES = 2 * 1024 * 1024  # an XML member: python-docx parses it into a tree
MAX_DOCX_TOTAL_BYTES = 16 * 1024 * 1024
MAX_DOCX_ENTRIES = 1000
MAX_DOCX_RUNS = 40_000
# The text itself, whatever the format: a bulletin is a few dozen paragraphs and a few thousand characters.
MAX_SCRIPT_PARAGRAPHS = 2_000
MAX_SCRIPT_CHARS = 3 * MAX_SCRIPT_BYTES

#: The six skill groups of the ward plans: stable slug → Vietnamese name.
TOPICS: dict[str, str] = {
    "thiet-bi-internet": "Sử dụng thiết bị và Internet",
    "dich-vu-cong": "Dịch vụ công trực tuyến",
    "thanh-toan": "Thanh toán không dùng tiền mặt",
    "thuong-mai-dien-tu": "Thương mại điện tử",
    "an-toan-thong-tin": "An toàn thông tin và phòng chống lừa đảo",
    "tim-kiem-ung-xu": "Tìm kiếm thông tin và ứng xử văn minh trên mạng",
}
PRIORITIES = ("normal", "priority", "emergency")
FRONT_MATTER_KEYS = ("title", "topic", "department", "link", "air_from", "air_until", "priority", "voice")
MAX_TITLE_CHARS = 200
MAX_DEPARTMENT_CHARS = 200
MAX_LINK_CHARS = 500
#: A title taken from the script's first line is cut (at a word) to this many characters.
MAX_DERIVED_TITLE_CHARS = 90


@dataclasses.dataclass(frozen=True)
class ScriptMeta:
    title: str | None = None
    topic: str | None = None
    department: str | None = None
    link: str | None = None
    air_from: dt.date | None = None
    air_until: dt.date | None = None
    priority: str = "normal"
    voice: str | None = None


@dataclasses.dataclass(frozen=True)
class Script:
    name: str  # file name only, sanitised
    meta: ScriptMeta
    body: str  # normalised; paragraphs separated by one blank line
    content_sha256: str  # of the raw file bytes
    encoding: str  # "utf-8", "utf-8-sig", "utf-16", "windows-1258", "tcvn3", "docx", "doc" or "pdf"
    warnings: tuple[str, ...] = ()  # Vietnamese, for the operator
    #: The script's own title: a .docx's first Heading 1, else its first line of substance, shortened.
    #: Shown when the front matter has no ``title:``; never spoken (the body already says it).
    heading: str | None = None

    @property
    def display_title(self) -> str:
        if self.meta.title:
            return self.meta.title
        if self.heading:
            return self.heading
        stem = self.name.rsplit(".", 1)[0] if "." in self.name else self.name
        words = " ".join(re.split(r"[\s_-]+", stem)).strip()
        return (words[:1].upper() + words[1:]) if words else self.name


class _Problem(NamedTuple):
    field: str
    code: str
    message: str


def _reject(message: str, code: str, name: str, **context: object) -> ScriptRejected:
    return ScriptRejected(message, code=code, filename=name, **context)


# ---------------------------------------------------------------------------------------------------
# Public entry points


def is_script_file(path: Path) -> bool:
    """A script an operator dropped, not a note for people (README.md) or an editor's temporary file."""
    return (
        path.is_file()
        and path.suffix.lower() in SCRIPT_SUFFIXES
        and not path.name.startswith((".", "~"))
        and path.stem.upper() != "README"
    )


def read_script(path: Path) -> Script:
    """Read and parse a script file (never more than MAX_SCRIPT_BYTES + 1 bytes are read)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_SCRIPT_BYTES + 1)
    except OSError as exc:
        raise ScriptRejected(
            f"Không đọc được tệp {path.name}: {exc.strerror or exc}.",
            code="SCRIPT_UNREADABLE",
            detail=str(exc),
            filename=path.name,
        ) from None
    return parse_script(data, path.name)


def parse_script(data: bytes, filename: str) -> Script:
    """Decode, split and validate one script; raises ScriptRejected with a stable ``code``."""
    name = _sanitize_name(filename)
    suffix = Path(name).suffix.lower()
    if suffix not in SCRIPT_SUFFIXES:
        raise _reject(
            f"Không nhận loại tệp “{suffix or name or '(không tên)'}”. Chỉ nhận {_ACCEPTED}; "
            "tệp khác (.rtf, .odt…) hãy mở bằng Word và lưu lại dạng .docx.",
            "SCRIPT_TYPE_UNSUPPORTED",
            name,
            suffix=suffix,
        )
    if len(data) > MAX_SCRIPT_BYTES:
        raise _reject(
            f"Tệp {name} quá lớn (hơn 1 MB). Một bản tin 3 phút chỉ dài khoảng 1/3 trang A4.",
            "SCRIPT_TOO_LARGE",
            name,
            limit_bytes=MAX_SCRIPT_BYTES,
        )
    if not data.strip():
        raise _reject(f"Tệp {name} trống, không có nội dung để phát.", "SCRIPT_EMPTY", name)
    digest = hashlib.sha256(data).hexdigest()

    core: dict[str, str] = {}
    kind = _word_or_pdf(data, suffix)
    if kind == "docx":
        text, warnings, core = _read_docx(data, name)
        encoding = "docx"
    elif kind in ("doc", "pdf"):
        from playout import documents  # only these files need it

        raw = documents.read_doc(data, name) if kind == "doc" else documents.read_pdf(data, name)
        text, warnings = clean_text(raw)
        encoding = kind
    else:
        try:
            text, encoding, warnings = decode_script_bytes(data)
        except ScriptRejected as exc:
            raise ScriptRejected(
                f"Tệp {name}: {exc.message}",
                code=exc.code,
                detail=exc.detail,
                **{**exc.context, "filename": name},
            ) from None

    raw_meta, body = _split_front_matter(text, name)
    if raw_meta is None and kind:
        raw_meta, body = _docx_key_lines(text, name)
    if raw_meta is None and core:
        meta, core_warnings = _meta_from_core_properties(core)
        warnings.extend(core_warnings)
    else:
        meta = _build_meta(raw_meta or {}, name)

    body = _format_body(body)
    _check_text_size(body, name)
    if not body:
        raise _reject(
            f"Tệp {name} không có nội dung bản tin (chỉ có phần thông tin đầu hoặc để trống).",
            "SCRIPT_EMPTY",
            name,
        )
    heading = _heading_title(core.get("heading", "")) or _first_line_title(body)
    logger.info("script %s accepted (%s, %d chars, sha256 %s…)", name, encoding, len(body), digest[:12])
    return Script(
        name=name,
        meta=meta,
        body=body,
        content_sha256=digest,
        encoding=encoding,
        warnings=tuple(warnings),
        heading=heading,
    )


_ACCEPTED = ", ".join(SCRIPT_SUFFIXES[:-1]) + " hoặc " + SCRIPT_SUFFIXES[-1]


def _word_or_pdf(data: bytes, suffix: str) -> str | None:
    """Which reader a Word or PDF file needs: by its content, since files get renamed (a .docx saved as
    "tin.doc", an old .doc renamed .docx).  None for text files, which are always read as text."""
    if suffix == ".pdf":
        return "pdf"
    if suffix not in (".doc", ".docx"):
        return None
    if data.startswith(b"\xd0\xcf\x11\xe0"):  # an OLE container: Word 97–2003 (or a password-protected .docx)
        return "doc"
    if data.startswith(b"PK\x03\x04"):
        return "docx"
    return suffix[1:]


# ---------------------------------------------------------------------------------------------------
# Titles from the text itself

# A greeting the bulletin opens with ("Kính thưa bà con!", "Thưa quý vị và các bạn,", "Xin chào bà con.",
# "Kính gửi:"), up to its first punctuation mark; not "Chào mừng …" (a celebration, often the subject).
_GREETING = re.compile(
    r"^(?:kính\s+thưa|kính\s+gửi|kính\s+chào|thưa|xin\s+chào|chào(?!\s+mừng))(?=[\s:,.!])"
    r"[^.!?:,\n]{0,60}[.!?:,]\s*",
    re.IGNORECASE,
)
# The national motto an official letter opens with: a heading for every letter, a title for none.
_MOTTO = re.compile(
    r"^(?:cộng\s+hòa\s+xã\s+hội\s+chủ\s+nghĩa\s+việt\s+nam|độc\s+lập\s*[-–—]\s*tự\s+do\s*[-–—]\s*hạnh\s+phúc)",
    re.IGNORECASE,
)
_FIRST_SENTENCE = re.compile(r"(.{10,}?[.!?…])\s")


def _shorten(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a word (with "…"); no trailing full stop or comma."""
    text = " ".join(text.split()).rstrip(" .,;:")
    if len(text) > limit:
        cut = text[:limit].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
        text = cut.rstrip(" .,;:–-") + "…"
    return text


def _heading_title(heading: str) -> str | None:
    text, _ = clean_text(heading)  # a .VnTime heading is repaired like the body
    return _shorten(text, MAX_TITLE_CHARS) or None


def _first_line_title(body: str) -> str | None:
    """The first sentence that says what the bulletin is about (past any greeting), as a short title."""
    for line in body.split("\n"):
        line = line.strip()
        if not line or _MOTTO.match(line):
            continue
        line = _GREETING.sub("", line, count=1).strip()
        if sum(1 for c in line if c.isalpha()) < 3:
            continue
        sentence = _FIRST_SENTENCE.match(line + " ")
        title = _shorten(sentence.group(1) if sentence else line, MAX_DERIVED_TITLE_CHARS)
        return title[:1].upper() + title[1:]
    return None


# ---------------------------------------------------------------------------------------------------
# File name and body


def _sanitize_name(filename: str) -> str:
    # Only the last path component, whatever the uploader's OS: the name is shown and may be used to
    # store the file, so no directories, control characters, or leading dots (hidden files).
    base = re.split(r"[\\/]", str(filename))[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C")
    base = base.strip().lstrip(".").rstrip(". ")
    if len(base.encode("utf-8")) > 200:
        stem, dot, suffix = base.rpartition(".")
        keep = stem.encode("utf-8")[: 190 - len(suffix)].decode("utf-8", errors="ignore")
        base = f"{keep}.{suffix}" if dot else keep
    return base


def _too_long(name: str, what: str, **context: object) -> ScriptRejected:
    return _reject(
        f"Tệp {name} quá dài để là một bản tin ({what}). Một bản tin 3 phút chỉ khoảng 1/3 trang A4; "
        "hãy tách thành các bản tin ngắn.",
        "SCRIPT_TEXT_TOO_LONG",
        name,
        **context,
    )


def _check_text_size(text: str, name: str) -> None:
    if len(text) > MAX_SCRIPT_CHARS:
        raise _too_long(
            name, f"hơn {MAX_SCRIPT_CHARS:,} ký tự".replace(",", "."), limit_chars=MAX_SCRIPT_CHARS
        )
    paragraphs = text.count("\n\n") + 1
    if paragraphs > MAX_SCRIPT_PARAGRAPHS:
        raise _too_long(
            name, f"{paragraphs} đoạn, tối đa {MAX_SCRIPT_PARAGRAPHS}", limit_paragraphs=MAX_SCRIPT_PARAGRAPHS
        )


def _format_body(text: str) -> str:
    paragraphs: list[str] = []
    current: list[str] = []
    for line in text.split("\n"):
        line = " ".join(line.split())
        if line:
            current.append(line)
        elif current:
            paragraphs.append("\n".join(current))
            current = []
    if current:
        paragraphs.append("\n".join(current))
    return "\n\n".join(paragraphs)


# ---------------------------------------------------------------------------------------------------
# Front matter


class _DuplicateKey(yaml.constructor.ConstructorError):
    pass


class _FrontMatterLoader(yaml.SafeLoader):
    """yaml.SafeLoader (plain Python types only) that keeps plain scalars as strings.

    YAML 1.1 would read ``title: 2024`` as a number, ``title: yes`` as True, ``link: 1:30`` as 90 and
    ``air_from: 2026-02-30`` as a crash; here only ``null``/``~``/empty become None and every other
    scalar reaches our own validation as the text the operator typed.  Repeated keys are refused instead
    of silently keeping the last one.
    """

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    key = key_node.value.strip().lower()
                    if key in seen:
                        raise _DuplicateKey(
                            "while constructing a mapping",
                            node.start_mark,
                            f"found duplicate key {key_node.value!r}",
                            key_node.start_mark,
                        )
                    seen.add(key)
        return super().construct_mapping(node, deep=deep)


_FrontMatterLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag == "tag:yaml.org,2002:null"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_FRONT_MATTER_HINT = (
    "Mỗi dòng phải có dạng “khóa: giá trị”; nếu giá trị có dấu hai chấm, dấu # hoặc bắt đầu bằng ký tự "
    "đặc biệt, hãy đặt nó trong ngoặc kép."
)


def _split_front_matter(text: str, name: str) -> tuple[dict[object, object] | None, str]:
    """(front matter mapping or None, body text)."""
    lines = text.split("\n")
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start == len(lines) or lines[start].rstrip() != "---":
        return None, text
    size = 0
    for end in range(start + 1, len(lines)):
        if lines[end].rstrip() in ("---", "..."):
            break
        size += len(lines[end].encode("utf-8")) + 1
        if size > MAX_FRONT_MATTER_BYTES:
            raise _reject(
                f"Phần thông tin đầu của tệp {name} quá dài (tối đa 64 KB) hoặc thiếu dòng --- đóng lại.",
                "FRONT_MATTER_INVALID",
                name,
            )
    else:
        raise _reject(
            f"Phần thông tin đầu của tệp {name} mở bằng dòng --- ở dòng {start + 1} nhưng không có dòng --- "
            "đóng lại.",
            "FRONT_MATTER_INVALID",
            name,
            line=start + 1,
        )
    first_line = start + 2  # 1-based file line of the first YAML line
    block = "\n".join(lines[start + 1 : end])
    try:
        data = yaml.load(block, Loader=_FrontMatterLoader)  # a SafeLoader: plain Python types only
    except _DuplicateKey as exc:
        line = first_line + exc.problem_mark.line
        raise _reject(
            f"Phần thông tin đầu của tệp {name} có khóa bị lặp lại ở dòng {line}: "
            "mỗi khóa chỉ được viết một lần.",
            "FRONT_MATTER_INVALID",
            name,
            detail=str(exc),
            line=line,
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = first_line + mark.line if mark else None
        where = f" ở dòng {line}, cột {mark.column + 1}" if mark else ""
        raise _reject(
            f"Phần thông tin đầu của tệp {name} sai cú pháp YAML{where}. {_FRONT_MATTER_HINT}",
            "FRONT_MATTER_INVALID",
            name,
            detail=str(exc),
            line=line,
        ) from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        # Explicit tags (!!int, !!timestamp) can fail in their constructors; deep nesting overflows.
        raise _reject(
            f"Phần thông tin đầu của tệp {name} không đọc được. {_FRONT_MATTER_HINT}",
            "FRONT_MATTER_INVALID",
            name,
            detail=f"{type(exc).__name__}: {exc}"[:500],
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _reject(
            f"Phần thông tin đầu của tệp {name} (từ dòng {first_line}) phải là các dòng “khóa: giá trị” "
            "(ví dụ “title: …”).",
            "FRONT_MATTER_INVALID",
            name,
            line=first_line,
        )
    return data, "\n".join(lines[end + 1 :])


_KEY_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_ -]{0,30}?)\s*:\s*(.*)$")


def _close_key(key: str) -> str | None:
    found = difflib.get_close_matches(
        key.replace("-", "_").replace(" ", "_"), FRONT_MATTER_KEYS, n=1, cutoff=0.75
    )
    return found[0] if found else None


def _docx_key_lines(text: str, name: str) -> tuple[dict[object, object] | None, str]:
    """Word's form of front matter: the first paragraphs reading ``key: value`` with known keys."""
    lines = text.split("\n")
    found: dict[object, object] = {}
    problems: list[_Problem] = []
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        match = _KEY_LINE.match(lines[i])
        if not match:
            break
        key = match.group(1).strip().lower()
        if key not in FRONT_MATTER_KEYS:
            # "Tittle: …" at the top is a misspelt key, not the bulletin's first sentence.
            close = _close_key(key)
            if not close:
                break
            problems.append(_unknown_key_problem(match.group(1)))
        elif key in found:
            problems.append(_Problem(key, "FIELD_INVALID", "khóa bị lặp lại"))
        else:
            found[key] = match.group(2).strip() or None
        i += 1
    if problems:
        raise _problems_error(problems, name)
    if not found:
        return None, text
    return found, "\n".join(lines[i:])


def _unknown_key_problem(key: object) -> _Problem:
    shown = key if isinstance(key, str) else type(key).__name__
    shown = str(shown)[:40]
    close = _close_key(shown.lower()) if isinstance(key, str) else None
    hint = f" (có phải “{close}”?)" if close else ""
    return _Problem(
        shown,
        "FRONT_MATTER_UNKNOWN_KEY",
        f"khóa không được hỗ trợ{hint}; các khóa hợp lệ: {', '.join(FRONT_MATTER_KEYS)}",
    )


def _problems_error(problems: list[_Problem], name: str) -> ScriptRejected:
    if len(problems) == 1:
        p = problems[0]
        message = f"Phần thông tin đầu của tệp {name} có lỗi: {p.field}: {p.message}."
    else:
        lines = "\n".join(f"  - {p.field}: {p.message}" for p in problems)
        message = f"Phần thông tin đầu của tệp {name} có {len(problems)} lỗi:\n{lines}"
    return ScriptRejected(
        message,
        code=problems[0].code,
        filename=name,
        problems=[p._asdict() for p in problems],
    )


def _build_meta(raw: dict[object, object], name: str) -> ScriptMeta:
    problems: list[_Problem] = []
    values: dict[str, object] = {}
    for key, value in raw.items():
        normal = key.strip().lower() if isinstance(key, str) else None
        if normal not in FRONT_MATTER_KEYS:
            problems.append(_unknown_key_problem(key))
        elif normal in values:
            problems.append(_Problem(normal, "FIELD_INVALID", "khóa bị lặp lại"))
        else:
            values[normal] = value

    def text(field: str, limit: int) -> str | None:
        value = values.get(field)
        if value is None:
            return None
        if not isinstance(value, str):
            # Lists and mappings are not shown back: a YAML alias bomb would print for ever.
            problems.append(_Problem(field, "FIELD_INVALID", "phải là một dòng chữ"))
            return None
        cleaned = " ".join(normalize_vietnamese(value).split())
        if len(cleaned) > limit:
            problems.append(_Problem(field, "FIELD_INVALID", f"dài {len(cleaned)} ký tự, tối đa {limit}"))
            return None
        return cleaned or None

    title = text("title", MAX_TITLE_CHARS)
    department = text("department", MAX_DEPARTMENT_CHARS)

    topic = text("topic", 100)
    if topic is not None:
        if topic.lower() in TOPICS:
            topic = topic.lower()
        else:
            choices = "; ".join(f"{slug} ({label})" for slug, label in TOPICS.items())
            problems.append(
                _Problem("topic", "TOPIC_UNKNOWN", f"chủ đề “{topic}” không có; chọn một trong: {choices}")
            )
            topic = None

    voice = text("voice", 100)
    if voice is not None:
        # Exact whitelist entry only: the name ends up in an engine's SSML (see tts.voices).
        canonical = {v.lower(): v for v in ALL_VOICES}.get(voice.lower())
        if canonical is None:
            problems.append(
                _Problem(
                    "voice",
                    "VOICE_UNKNOWN",
                    f"giọng “{voice}” không có; chọn một trong: {', '.join(ALL_VOICES)}",
                )
            )
        voice = canonical

    priority = text("priority", 50)
    if priority is None:
        priority = "normal"
    elif priority.lower() in PRIORITIES:
        priority = priority.lower()
    else:
        problems.append(
            _Problem(
                "priority",
                "PRIORITY_INVALID",
                f"“{priority}” không hợp lệ; chọn normal (thường), priority (ưu tiên) "
                "hoặc emergency (khẩn cấp)",
            )
        )
        priority = "normal"

    link = text("link", MAX_FRONT_MATTER_BYTES)
    if link is not None:
        why = _link_problem(link)
        if why:
            problems.append(_Problem("link", "LINK_INVALID", why))
            link = None

    air_from = _date_field(values, "air_from", problems)
    air_until = _date_field(values, "air_until", problems)
    if air_from and air_until and air_from > air_until:
        problems.append(
            _Problem(
                "air_from",
                "AIR_DATES_INVALID",
                f"ngày bắt đầu phát {air_from:%d/%m/%Y} sau ngày kết thúc {air_until:%d/%m/%Y}",
            )
        )

    if problems:
        raise _problems_error(problems, name)
    return ScriptMeta(
        title=title,
        topic=topic,
        department=department,
        link=link,
        air_from=air_from,
        air_until=air_until,
        priority=priority,
        voice=voice,
    )


_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_VN_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


def _date_field(values: dict[str, object], field: str, problems: list[_Problem]) -> dt.date | None:
    value = values.get(field)
    if value is None or value == "":
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value  # an explicit !!timestamp
    if isinstance(value, str):
        value = value.strip()
        iso, vn = _ISO_DATE.fullmatch(value), _VN_DATE.fullmatch(value)
        try:
            if iso:
                return dt.date(int(iso[1]), int(iso[2]), int(iso[3]))
            if vn:
                return dt.date(int(vn[3]), int(vn[2]), int(vn[1]))
        except ValueError:
            problems.append(_Problem(field, "AIR_DATES_INVALID", f"ngày “{value}” không có thật"))
            return None
    shown = f"“{value[:40]}”" if isinstance(value, str) else "giá trị này"
    problems.append(
        _Problem(field, "AIR_DATES_INVALID", f"{shown} không phải ngày; viết dạng 2026-12-01 hoặc 01/12/2026")
    )
    return None


_LINK_FORBIDDEN = re.compile(r"[\s<>\"`\\^{}|]")


def _link_problem(link: str) -> str | None:
    if len(link) > MAX_LINK_CHARS:
        return f"dài {len(link)} ký tự, tối đa {MAX_LINK_CHARS}"
    if _LINK_FORBIDDEN.search(link):
        return "có dấu cách hoặc ký tự không được phép trong địa chỉ web"
    try:
        parts = urlsplit(link)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "địa chỉ web không hợp lệ"
    if parts.scheme.lower() not in ("http", "https"):
        return "phải là địa chỉ web bắt đầu bằng https:// hoặc http://"
    if not parts.hostname:
        return "thiếu tên miền (ví dụ https://dichvucong.gov.vn)"
    return None


# ---------------------------------------------------------------------------------------------------
# Word documents


def _docx_invalid(name: str, reason: str, detail: str = "") -> ScriptRejected:
    return ScriptRejected(
        f"Tệp Word {name} không mở được: {reason}. "
        "Hãy mở bằng Word và lưu lại dạng .docx (không đặt mật khẩu).",
        code="DOCX_INVALID",
        detail=detail,
        filename=name,
    )


def _read_docx(data: bytes, name: str) -> tuple[str, list[str], dict[str, str]]:
    """(text with paragraphs separated by blank lines, warnings, core properties), read in a child process.

    A Word file comes from anyone with an account (or the inbox share) and is unzipped and parsed by
    python-docx and lxml: a parser bug, a crafted file or a tree that eats memory must cost that upload,
    not the process holding the relay (nor leave lxml's ~15 MB in it).  ``playout.wordfile`` runs
    ``_read_docx_here`` niced, under a memory and a time limit, and answers in JSON.
    """
    from playout import wordfile

    return wordfile.read_in_child(data, name)


def _read_docx_here(data: bytes, name: str) -> tuple[str, list[str], dict[str, str]]:
    """What ``_read_docx`` does, in this process (``playout.wordfile``'s child calls it)."""
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        # An OLE container: a password-protected .docx or an old .doc renamed.
        raise _docx_invalid(name, "tệp có mật khẩu hoặc là tệp .doc cũ", "OLE compound file")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_DOCX_ENTRIES:
                raise _docx_invalid(name, "tệp có quá nhiều thành phần", f"{len(entries)} zip entries")
            if any(e.flag_bits & 0x1 for e in entries):
                raise _docx_invalid(name, "tệp có mật khẩu", "encrypted zip entries")
            main = _inflate_all(archive, entries, name)
    except ScriptRejected:
        raise
    except Exception as exc:  # zipfile raises BadZipFile, NotImplementedError, EOFError, zlib.error… on junk
        raise _docx_invalid(name, "tệp bị hỏng hoặc không phải tệp .docx", repr(exc)[:500]) from None
    _check_main_part(main, name)
    try:
        import docx  # python-docx and lxml are slow to import on a Pi; only Word files need them

        document = docx.Document(io.BytesIO(data))
        paragraphs, fonts, heading = _docx_paragraphs(document)
        props = document.core_properties
        core = {
            "title": props.title or "",
            "keywords": props.keywords or "",
            "category": props.category or "",
            "author": props.author or "",
            "heading": heading,
        }
    except _TooManyParagraphs:
        raise _too_long(
            name, f"hơn {MAX_SCRIPT_PARAGRAPHS} đoạn", limit_paragraphs=MAX_SCRIPT_PARAGRAPHS
        ) from None
    except Exception as exc:  # python-docx and lxml raise many kinds of error on a malformed package
        logger.info("docx %s unreadable: %r", name, exc)
        raise _docx_invalid(name, "tệp bị hỏng hoặc không phải văn bản Word", repr(exc)[:500]) from None
    warnings: list[str] = []
    if fonts["tcvn3"]:
        warnings.append(
            f"Có {fonts['tcvn3']} đoạn chữ dùng phông TCVN3 (.VnTime); đã chuyển sang Unicode. "
            "Hãy nghe thử để kiểm tra."
        )
    if fonts["vni"]:
        warnings.append(
            f"Có {fonts['vni']} đoạn chữ dùng phông VNI, chưa đọc được đúng. "
            "Hãy chuyển mã sang Unicode bằng Unikey."
        )
    text, more = clean_text("\n\n".join(paragraphs))
    return text, warnings + more, core


def _docx_too_large(name: str, detail: str) -> ScriptRejected:
    return ScriptRejected(
        f"Tệp Word {name} chứa quá nhiều dữ liệu khi giải nén (tối đa {MAX_DOCX_TOTAL_BYTES // 2**20} MB). "
        "Một bản tin chỉ cần chữ; hãy bỏ bớt hình ảnh hoặc lưu lại thành tệp mới.",
        code="DOCX_TOO_LARGE",
        detail=detail,
        filename=name,
    )


_CHUNK = 64 * 1024


def _inflate_all(archive: zipfile.ZipFile, entries: list[zipfile.ZipInfo], name: str) -> bytes:
    """Inflate every member once, counting what comes out; returns word/document.xml (b"" if missing).

    The counts are of bytes actually produced, chunk by chunk, so a member that claims 1 kB and inflates
    to a gigabyte is stopped at the cap, having cost one chunk of memory beyond it.
    """
    total = 0
    main = b""
    for entry in entries:
        is_xml = entry.filename.lower().endswith((".xml", ".rels"))
        cap = MAX_DOCX_XML_BYTES if is_xml else MAX_DOCX_PART_BYTES
        keep = entry.filename == "word/document.xml"
        size = 0
        pieces: list[bytes] = []
        with archive.open(entry) as member:
            while chunk := member.read(_CHUNK):
                size += len(chunk)
                total += len(chunk)
                if keep:
                    pieces.append(chunk)
                if size > cap or total > MAX_DOCX_TOTAL_BYTES:
                    if keep:  # a main part this large is usually paragraph upon paragraph: say so
                        _check_main_part(b"".join(pieces), name)
                    raise _docx_too_large(
                        name,
                        f"{entry.filename}: over {size} bytes inflated (cap {cap}), "
                        f"{total} in all (cap {MAX_DOCX_TOTAL_BYTES}); header said {entry.file_size}",
                    )
        if keep:
            main = b"".join(pieces)
    return main


# A paragraph or a run element, under any namespace prefix (Word writes w:, but XML allows any).
_PARAGRAPH_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?p[\s/>]")
_RUN_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?r[\s/>]")


def _check_main_part(xml: bytes, name: str) -> None:
    """Count paragraphs and runs in the raw XML: python-docx's walk costs time per paragraph and per run
    (60 000 empty paragraphs took it 45 s), so a file with too many is refused before it is parsed."""
    paragraphs = len(_PARAGRAPH_TAG.findall(xml))
    if paragraphs > MAX_SCRIPT_PARAGRAPHS:
        raise _too_long(
            name, f"{paragraphs} đoạn, tối đa {MAX_SCRIPT_PARAGRAPHS}", limit_paragraphs=MAX_SCRIPT_PARAGRAPHS
        )
    runs = len(_RUN_TAG.findall(xml))
    if runs > MAX_DOCX_RUNS:
        raise _too_long(name, f"{runs} đoạn định dạng, tối đa {MAX_DOCX_RUNS}", limit_runs=MAX_DOCX_RUNS)


#: Paragraph styles whose text is the document's title (Word stores built-in style names in English
#: whatever the language of its menus; the style *ids* are translated in some, "berschrift1").
_TITLE_STYLES = ("heading 1", "title")


def _docx_paragraphs(document) -> tuple[list[str], dict[str, int], str]:
    """(paragraphs, font counts, the first Heading 1 or Title paragraph's text or "").

    A table is one paragraph with a line per row, its cells joined (``documents.join_cells``): read out
    as "Khi nghi ngờ, gọi 113", one row a sentence, rather than cell after cell with no sign of the rows.
    """
    from docx.enum.style import WD_STYLE_TYPE
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    from playout.documents import join_cells

    fonts = {"tcvn3": 0, "vni": 0}
    paragraphs: list[str] = []
    heading = ""
    defaults = document.styles.element.xpath("w:docDefaults/w:rPrDefault/w:rPr")
    default_font = _rfonts(defaults[0] if defaults else None)
    # python-docx finds a style (and, for a run without one, the default style) by scanning every style
    # in the document: 0.7 ms a run.  One lookup per style id instead keeps a long document linear.
    cache: dict[tuple[str, str | None], str | None] = {}

    def style_font(kind: str, style_id: str | None) -> str | None:
        key = (kind, style_id)
        if key not in cache:
            style_type = WD_STYLE_TYPE.PARAGRAPH if kind == "p" else WD_STYLE_TYPE.CHARACTER
            cache[key] = _style_font(document.part.get_style(style_id, style_type))
        return cache[key]

    names: dict[str | None, str] = {}

    def style_name(style_id: str | None) -> str:
        if style_id not in names:
            style = document.styles.element.get_by_id(style_id) if style_id else None
            names[style_id] = (style.name_val or "").lower() if style is not None else ""
        return names[style_id]

    def paragraph_text(block: Paragraph) -> str:
        if len(paragraphs) >= MAX_SCRIPT_PARAGRAPHS:  # the raw count missed some (nested, say)
            raise _TooManyParagraphs
        paragraph_font = style_font("p", block._p.style) or default_font
        return _paragraph_text(block, paragraph_font, style_font, fonts)

    def cell_text(container) -> str:
        pieces = []
        for block in container.iter_inner_content():
            if isinstance(block, Paragraph):
                pieces.append(paragraph_text(block))
            elif isinstance(block, Table):  # a table in a cell: its rows, one after the other
                pieces.extend(table_rows(block))
        return join_cells(pieces)

    def table_rows(table: Table) -> list[str]:
        rows = []
        # A merged cell is returned once per grid column (and, merged down, per row) it spans: read once.
        seen: dict[int, object] = {}
        for row in table.rows:
            cells = []
            for cell in row.cells:
                if id(cell._tc) not in seen:
                    seen[id(cell._tc)] = cell._tc  # keeps the element alive so ids stay unique
                    cells.append(cell_text(cell))
            line = join_cells(cells)
            if line:
                rows.append(line)
        return rows

    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            text = paragraph_text(block)
            if not heading and text.strip() and style_name(block._p.style) in _TITLE_STYLES:
                heading = text
            paragraphs.append(text)
        elif isinstance(block, Table):
            paragraphs.append("\n".join(table_rows(block)))
    return paragraphs, fonts, heading


class _TooManyParagraphs(Exception):
    pass


def _rfonts(rpr) -> str | None:
    """The font a run property block sets for Latin text (TCVN3 codes are in Word's "high ANSI" range)."""
    if rpr is None:
        return None
    from docx.oxml.ns import qn

    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        return None
    return fonts.get(qn("w:hAnsi")) or fonts.get(qn("w:ascii"))


def _style_font(style) -> str | None:
    depth = 0
    while style is not None and depth < 20:  # base_style chains are short; a loop must not hang us
        font = _rfonts(style.element.rPr)
        if font:
            return font
        style = style.base_style
        depth += 1
    return None


def _paragraph_text(paragraph, paragraph_font: str | None, style_font, fonts: dict[str, int]) -> str:
    from docx.text.run import Run

    pieces: list[str] = []
    last = ""  # the last non-blank character so far: does a TCVN3 run start a sentence?
    for item in paragraph.iter_inner_content():
        for run in [item] if isinstance(item, Run) else item.runs:
            text = run.text
            font = _rfonts(run._r.rPr) or style_font("r", run._r.style) or paragraph_font or ""
            if font.lower().startswith(".vn") and text:
                # ABC/TCVN3 fonts: ".VnTime", ".VnArial"…; the "…H" variants draw every letter as a capital.
                text = tcvn3_to_unicode(text, starts_sentence=last in ("", ".", "!", "?", "…"))
                if font.endswith("H"):
                    text = text.upper()
                fonts["tcvn3"] += 1
            elif font.lower().startswith("vni") and text and not text.isascii():
                fonts["vni"] += 1
            pieces.append(text)
            stripped = text.rstrip()
            if stripped:
                last = stripped[-1]
    return "".join(pieces)


def _meta_from_core_properties(core: dict[str, str]) -> tuple[ScriptMeta, list[str]]:
    """Front matter from the document's properties; unusable values are skipped, never refused."""
    warnings: list[str] = []
    title = " ".join(normalize_vietnamese(core.get("title", "")).split()) or None
    if title and len(title) > MAX_TITLE_CHARS:
        warnings.append("Tiêu đề trong thuộc tính tệp Word quá dài nên không dùng.")
        title = None
    topic = None
    for source in (core.get("keywords", ""), core.get("category", "")):
        for word in re.split(r"[\s,;]+", source.lower()):
            if word in TOPICS:
                topic = word
                break
        if topic:
            break
    department = " ".join(normalize_vietnamese(core.get("author", "")).split()) or None
    # python-docx stamps its own name as the author of documents it creates from its template.
    if department == "python-docx" or (department and len(department) > MAX_DEPARTMENT_CHARS):
        department = None
    return ScriptMeta(title=title, topic=topic, department=department), warnings
