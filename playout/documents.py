"""Old Word (.doc) and PDF scripts, read by Debian's own tools in a limited child process.

- ``.doc`` (Word 97–2003): ``antiword -m UTF-8.txt -w 0``: UTF-8 out, one line per paragraph, blank lines
  between paragraphs.  antiword follows the document's piece table (so files Word "fast saved" or edited
  many times read in order) and keeps U+00AD, which is the letter "ư" in text typed in a .VnTime (TCVN3)
  font; ``playout.textcodec`` then turns such look-alike text into Unicode.  catdoc was tried too: it
  drops U+00AD (every "phường", "người" loses its ư) and silently lost a table's text in a small file.
  Tables in antiword's text come out as fixed-width ``|cell|cell|`` lines that wrap long cells onto the
  next line, so when there are any, a second run (``antiword -x db``, DocBook XML) gives the rows, and
  each becomes one line with its cells joined.  (Not XML for everything: it glues the two sides of a manual
  line break together, "mộtdòng".)
- ``.pdf``: ``pdftotext -enc UTF-8 -layout -nopgbrk``: ``-layout`` keeps a table row on one line and
  leaves a blank line between paragraphs (without it a Chromium or Word PDF comes out as one block); the
  lines a paragraph was wrapped into are joined again by ``reflow_pdf_text``.  A PDF with no text layer
  (a scan) is refused with ``PDF_NO_TEXT``: the station cannot read pictures of words.

Each tool runs with its input and output in a private temporary folder, under ``prlimit`` (address
space, CPU seconds, size of any file it writes: that caps its output, no core files) and ``nice``, in
its own process group, killed after ``TIMEOUT_S``.  A file that crashes, hangs, eats memory or writes
without end is refused with a stable code and a Vietnamese message; the caller carries on.  This module
imports only the standard library: the station loads it on every intake.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple

from playout.errors import ScriptRejected

logger = logging.getLogger(__name__)

TIMEOUT_S = 20.0
MEMORY_MB = 512
#: A bulletin is a few kB of text; any file a tool writes (its text, its messages) is cut off here.
MAX_OUTPUT_BYTES = 8 * 1024 * 1024
#: Fewer letters than this in a whole PDF: a scan (perhaps with a typed page number), not a text.
MIN_PDF_LETTERS = 20
#: The commands, looked up on PATH when a file is read (tests point them at stand-ins).
TOOLS = {"antiword": "antiword", "pdftotext": "pdftotext"}
#: Debian packages that provide them, for the message when one is missing (see RUNTIME_APT in Makefile).
PACKAGES = {"antiword": "antiword", "pdftotext": "poppler-utils"}

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


class ToolRun(NamedTuple):
    returncode: int
    stdout: bytes
    stderr: str


class _Failed(Exception):
    """The tool did not finish normally: ``why`` is for the log, ``kind`` says which refusal."""

    def __init__(self, kind: str, why: str):
        super().__init__(why)
        self.kind = kind  # "timeout", "output", "crash"
        self.why = why


# ---------------------------------------------------------------------------------------------------
# Running a tool


def _limited(argv: list[str]) -> list[str]:
    """``argv`` under prlimit and nice, when this system has them (util-linux and coreutils on Debian)."""
    out = list(argv)
    nice = shutil.which("nice")
    if nice:
        out = [nice, "-n", "10", *out]
    prlimit = shutil.which("prlimit")
    if prlimit:
        out = [
            prlimit,
            f"--as={MEMORY_MB * 2**20}",
            f"--cpu={math.ceil(TIMEOUT_S)}",
            f"--fsize={MAX_OUTPUT_BYTES}",
            "--core=0",
            "--",
            *out,
        ]
    return out


def run_tool(tool: str, args: list[str], data: bytes, *, suffix: str) -> ToolRun:
    """Run ``tool`` on ``data`` (written to a private file; ``{input}`` in ``args`` is its path, ``{output}``
    a path the tool may write).  Raises _Failed, or ScriptRejected (SCRIPT_READER_MISSING)."""
    exe = shutil.which(TOOLS[tool])
    if exe is None:
        raise _missing(tool)
    with tempfile.TemporaryDirectory(prefix="playout-read-") as tmp:
        folder = Path(tmp)
        source = folder / f"input{suffix}"
        source.write_bytes(data)
        output, errors = folder / "output.txt", folder / "errors.txt"
        argv = [exe, *(a.format(input=source, output=output) for a in args)]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": tmp,  # antiword wants one; this keeps it off the service user's own mapping files
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
        }
        with output.open("wb") as out_fh, errors.open("wb") as err_fh:
            try:
                proc = subprocess.Popen(
                    _limited(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=out_fh,
                    stderr=err_fh,
                    env=env,
                    cwd=tmp,
                    process_group=0,
                )
            except OSError as exc:  # found a moment ago, gone or not executable now
                logger.error("%s could not be started: %s", tool, exc)
                raise _missing(tool) from None
            try:
                returncode = proc.wait(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise _Failed("timeout", f"{tool}: no answer in {TIMEOUT_S:g}s, killed") from None
        stderr = _head(errors, 4096).decode("utf-8", "replace").strip()
        if returncode == -signal.SIGXFSZ or output.stat().st_size > MAX_OUTPUT_BYTES:
            raise _Failed("output", f"{tool}: wrote more than {MAX_OUTPUT_BYTES} bytes, stopped")
        if returncode < 0:
            name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else -returncode
            raise _Failed("crash", f"{tool}: killed by signal {name}; {stderr[:300]}")
        return ToolRun(returncode, _head(output, MAX_OUTPUT_BYTES), stderr)


def _head(path: Path, limit: int) -> bytes:
    with path.open("rb") as fh:
        return fh.read(limit)


def _missing(tool: str) -> ScriptRejected:
    return ScriptRejected(
        f"Trạm chưa cài chương trình đọc loại tệp này ({tool}, gói {PACKAGES[tool]}). "
        "Hãy báo kỹ thuật viên chạy “make install”, hoặc gửi bản .docx hay .txt.",
        code="SCRIPT_READER_MISSING",
        detail=f"{TOOLS[tool]} not found on PATH",
        tool=tool,
    )


def _too_long(name: str, detail: str) -> ScriptRejected:
    return ScriptRejected(
        f"Tệp {name} quá dài để là một bản tin (hơn {MAX_OUTPUT_BYTES // 2**20} MB chữ). Một bản tin 3 phút "
        "chỉ khoảng 1/3 trang A4; hãy tách thành các bản tin ngắn.",
        code="SCRIPT_TEXT_TOO_LONG",
        detail=detail,
        filename=name,
    )


# ---------------------------------------------------------------------------------------------------
# Word 97–2003


def _doc_invalid(name: str, reason: str, detail: str) -> ScriptRejected:
    return ScriptRejected(
        f"Tệp Word {name} không đọc được: {reason}. "
        "Hãy mở bằng Word và lưu lại dạng .docx (Tệp → Lưu thành → Word Document), không đặt mật khẩu.",
        code="DOC_INVALID",
        detail=detail,
        filename=name,
    )


# antiword's own words (stderr) → what the operator is told.
_ANTIWORD_REASONS = (
    ("too small to handle", "tệp .doc rất ngắn này không do Microsoft Word lưu ra"),
    ("Encrypted", "tệp có mật khẩu"),
    ("Rich Text Format", "đây là tệp RTF đặt tên .doc"),
    ("HTML", "đây là trang web (HTML) đặt tên .doc"),
    ("XML file", "đây là tệp XML đặt tên .doc"),
    ("before Word 6", "tệp Word quá cũ (trước Word 6)"),
    ("not supported", "tệp lưu theo kiểu Word này chưa đọc được"),
)


def read_doc(data: bytes, name: str) -> str:
    """The text of a Word 97–2003 document: paragraphs separated by blank lines, table rows one a line."""
    try:
        run = run_tool("antiword", ["-m", "UTF-8.txt", "-w", "0", "{input}"], data, suffix=".doc")
    except _Failed as exc:
        logger.warning("doc %s: %s", name, exc.why)
        if exc.kind == "output":
            raise _too_long(name, exc.why) from None
        raise _doc_invalid(name, "tệp quá phức tạp hoặc bị hỏng", exc.why) from None
    if run.returncode != 0 or not run.stdout.strip():
        reason = next((vi for key, vi in _ANTIWORD_REASONS if key in run.stderr), None)
        logger.info("doc %s refused: antiword exit %d: %s", name, run.returncode, run.stderr[:300])
        raise _doc_invalid(
            name,
            reason or "tệp bị hỏng, có mật khẩu hoặc không phải văn bản Word",
            f"antiword exit {run.returncode}: {run.stderr[:500]}",
        )
    text = run.stdout.decode("utf-8", "replace")
    if _TABLE_LINE.search(text):
        text = _doc_tables_as_rows(text, data, name)
    return text


_TABLE_LINE = re.compile(r"^\|.*\|[ \t]*$", re.MULTILINE)
_TABLE_BLOCK = re.compile(r"(?:^\|.*\|[ \t]*(?:\n|$))+", re.MULTILINE)


def _doc_tables_as_rows(text: str, data: bytes, name: str) -> str:
    """Replace antiword's drawn tables with one line per row, taken from its DocBook output."""
    tables: list[list[str]] | None = None
    try:
        run = run_tool("antiword", ["-x", "db", "{input}"], data, suffix=".doc")
        if run.returncode == 0:
            tables = _docbook_tables(run.stdout)
    except _Failed as exc:
        logger.warning("doc %s: tables as XML: %s", name, exc.why)
    blocks = _TABLE_BLOCK.findall(text)
    if tables is None or len(tables) != len(blocks):
        logger.info("doc %s: %d drawn tables, XML gave %s; reading the drawn ones", name, len(blocks), tables)
        return _TABLE_BLOCK.sub(lambda m: _drawn_rows(m.group(0)), text)
    rows = iter(tables)
    return _TABLE_BLOCK.sub(lambda m: "\n".join(next(rows)) + "\n", text)


def _docbook_tables(xml: bytes) -> list[list[str]] | None:
    """Each ``informaltable`` in antiword's DocBook output as its rows, cells joined; None if unreadable."""
    import xml.etree.ElementTree as ET  # antiword escapes the text it writes, and expat fetches no DTD

    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        logger.info("antiword's DocBook output unreadable: %s", exc)
        return None
    tables = []
    for table in root.iter("informaltable"):
        rows = []
        for row in table.iter("row"):
            line = join_cells(" ".join("".join(entry.itertext()).split()) for entry in row.iter("entry"))
            if line:
                rows.append(line)
        tables.append(rows)
    return tables


def _drawn_rows(block: str) -> str:
    lines = []
    for line in block.splitlines():
        joined = join_cells(cell for cell in line.strip()[1:-1].split("|"))
        if joined:
            lines.append(joined)
    return "\n".join(lines) + "\n"


_CELL_END = re.compile(r"[,.;:!?…–-]$")


def join_cells(cells) -> str:
    """One table row as one line to read out: cells in order, empty and repeated ones dropped, a comma
    between them unless a cell already ends in punctuation."""
    out = ""
    last = None
    for cell in cells:
        cell = " ".join(str(cell).split())
        if not cell or cell == last:
            continue
        last = cell
        out = cell if not out else f"{out} {cell}" if _CELL_END.search(out) else f"{out}, {cell}"
    return out


# ---------------------------------------------------------------------------------------------------
# PDF


def _pdf_invalid(name: str, reason: str, detail: str) -> ScriptRejected:
    return ScriptRejected(
        f"Tệp PDF {name} không đọc được: {reason}. Hãy gửi tệp Word (.docx) gốc của bản tin.",
        code="PDF_INVALID",
        detail=detail,
        filename=name,
    )


def read_pdf(data: bytes, name: str) -> str:
    """The text of a PDF's text layer, paragraphs separated by blank lines; a scan is refused."""
    if b"%PDF-" not in data[:1024]:
        raise _pdf_invalid(name, "nội dung không phải tệp PDF", "no %PDF- header in the first 1024 bytes")
    try:
        run = run_tool(
            "pdftotext", ["-enc", "UTF-8", "-layout", "-nopgbrk", "{input}", "{output}"], data, suffix=".pdf"
        )
    except _Failed as exc:
        logger.warning("pdf %s: %s", name, exc.why)
        if exc.kind == "output":
            raise _too_long(name, exc.why) from None
        raise _pdf_invalid(name, "tệp quá phức tạp hoặc bị hỏng", exc.why) from None
    if run.returncode != 0:
        logger.info("pdf %s refused: pdftotext exit %d: %s", name, run.returncode, run.stderr[:300])
        reason = "tệp có mật khẩu" if "password" in run.stderr.lower() else "tệp bị hỏng hoặc tải về chưa hết"
        raise _pdf_invalid(name, reason, f"pdftotext exit {run.returncode}: {run.stderr[:500]}")
    text = run.stdout.decode("utf-8", "replace")
    letters = sum(1 for c in text if c.isalpha())
    if letters < MIN_PDF_LETTERS:
        raise ScriptRejected(
            f"Tệp PDF {name} không có chữ để đọc: có lẽ đây là bản chụp hoặc bản quét (chỉ có hình ảnh). "
            "Trạm không đọc được chữ trong ảnh; hãy gửi tệp Word (.docx hoặc .doc) gốc của bản tin.",
            code="PDF_NO_TEXT",
            detail=f"{letters} letters in the text layer",
            filename=name,
        )
    return reflow_pdf_text(text)


_PAGE_NUMBER = re.compile(r"(?i)^[-–—\s]*(?:trang\s*)?\d{1,4}(?:\s*/\s*\d{1,4})?[-–—\s]*$")
_SENTENCE_END = re.compile(r"[.!?…:;]['\"”’)»]*$")
_LIST_ITEM = re.compile(r"^(?:[-–—•●▪+*]\s|\d{1,2}[.)]\s|[a-zđ][.)]\s)")


def reflow_pdf_text(text: str) -> str:
    """Join the lines a paragraph was wrapped into; keep headings, list items and short lines apart.

    A line continues the one before it when that one does not end a sentence, this one does not start a
    list item, and either this one starts with a small letter or that one reaches most of the text's
    width (it was wrapped, not ended).  Lines that are only a page number ("3", "- 3 -", "Trang 3/4") are
    dropped.
    """
    paragraphs: list[list[str]] = [[]]
    for raw in text.replace("\f", "\n").split("\n"):
        line = " ".join(raw.split())
        if not line:
            if paragraphs[-1]:
                paragraphs.append([])
        elif not _PAGE_NUMBER.match(line):
            paragraphs[-1].append(line)
    width = max((len(line) for lines in paragraphs for line in lines), default=0)
    out = []
    for lines in paragraphs:
        if not lines:
            continue
        joined = [lines[0]]
        for prev, line in zip(lines, lines[1:], strict=False):
            wrapped = (
                not _SENTENCE_END.search(prev)
                and not _LIST_ITEM.match(line)
                and (line[:1].islower() or len(prev) >= 0.75 * width)
            )
            if wrapped:
                joined[-1] = f"{joined[-1]} {line}"
            else:
                joined.append(line)
        out.append("\n".join(joined))
    return "\n\n".join(out)
