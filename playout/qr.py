"""QR codes and printable posters for bulletins: "Nghe – Quét – Thực hành" (Listen – Scan – Practise).

The ward plans post one QR code per bulletin at the ward office, cultural houses and notice boards: a
resident hears the bulletin on the loudspeaker, scans the code and follows the written guide.  This module
turns a bulletin into the link behind that code, the code itself (PNG or SVG) and an A5 poster page the
operator prints or shares.

Everything here is deterministic (same bulletin, same bytes), so a code printed last month still matches
what the web page shows today.
"""

from __future__ import annotations

import functools
import io
import logging
import re
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from playout.intake import TOPICS

if TYPE_CHECKING:
    import qrcode

    from playout.library import Bulletin

logger = logging.getLogger(__name__)

MOTTO = "Nghe – Quét – Thực hành"
DEFAULT_PROGRAMME = "Học số mỗi ngày 3 phút"
MAX_SLUG_CHARS = 60
TEMPLATES = Path(__file__).resolve().parent / "templates"

# đ/Đ are letters of their own, not d plus a combining mark, so NFD alone would drop them.
_SLUG_LETTERS = str.maketrans({"đ": "d", "Đ": "D"})


# ---------------------------------------------------------------------------------------------------
# The link behind the code


def slugify(text: str, max_chars: int = MAX_SLUG_CHARS) -> str:
    """An ASCII slug: Vietnamese diacritics removed, đ→d, lowercase, words joined by hyphens.

    Cut at a word boundary when longer than ``max_chars`` (a cut syllable reads as a different word).
    """
    decomposed = unicodedata.normalize("NFD", text.translate(_SLUG_LETTERS))
    ascii_text = "".join(c for c in decomposed if not unicodedata.combining(c))
    ascii_text = ascii_text.encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    if len(slug) > max_chars:
        cut = slug[: max_chars + 1]
        slug = cut.rsplit("-", 1)[0] if "-" in cut else slug[:max_chars]
        slug = slug[:max_chars].strip("-")
    return slug


def bulletin_link(bulletin: Bulletin, base_url: str | None) -> str:
    """The address the bulletin's QR code opens.

    The front matter's ``link`` wins (the department's own guide); otherwise the station's web portal
    page ``<base_url>/<title-slug>-<first 8 hex of the id>``.  The id suffix keeps two bulletins with the
    same title apart and changes when the script is edited, like the bulletin itself.
    """
    link = bulletin.script.meta.link
    if link:
        return link
    base = (base_url or "").strip()
    if not base:
        raise ValueError(
            f"Bản tin “{bulletin.title}” chưa có đường dẫn (link) trong phần thông tin đầu, và trạm chưa "
            "khai báo địa chỉ trang web của phường (base_url), nên chưa tạo được mã QR."
        )
    parts = urlsplit(base)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        # A code without a scheme opens a web search on many phones instead of the page.
        raise ValueError(
            f"Địa chỉ trang web của phường “{base}” không hợp lệ: phải bắt đầu bằng https:// hoặc http://."
        )
    slug = slugify(bulletin.title) or "ban-tin"
    return f"{base.rstrip('/')}/{slug}-{bulletin.id[:8].lower()}"


# ---------------------------------------------------------------------------------------------------
# The code itself


def _qr(link: str, box_size: int = 10, border: int = 4) -> qrcode.QRCode:
    # Imported here: qrcode brings Pillow and lxml (~15 MB), which the on-air daemon only needs when
    # someone asks for a code.
    import qrcode

    if not link:
        raise ValueError("Không có đường dẫn để tạo mã QR.")
    # Level M (15 % recovery) survives a scuffed or rain-marked notice board and keeps the code small
    # enough for cheap phone cameras; the version grows with the link (fit=True).
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=box_size, border=border)
    # A str is stored as UTF-8 bytes; phone scanners and zbar read Vietnamese links back correctly.
    code.add_data(link)
    code.make(fit=True)
    return code


def qr_png(link: str, *, box_size: int = 10, border: int = 4) -> bytes:
    """The QR code as PNG bytes (black on white, ``border`` modules of quiet zone)."""
    import qrcode.image.pil

    image = _qr(link, box_size, border).make_image(image_factory=qrcode.image.pil.PilImage)
    out = io.BytesIO()
    image.save(out, format="PNG")  # Pillow writes no timestamp chunk: same link, same bytes
    return out.getvalue()


def qr_svg(link: str) -> bytes:
    """The QR code as a standalone SVG document (UTF-8, one path; 1 module = 1 mm at natural size)."""
    import qrcode.image.svg

    image = _qr(link).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    out = io.BytesIO()
    image.save(out)
    return out.getvalue()


def _qr_svg_inline(link: str) -> Markup:
    """The code as an ``<svg>`` element for embedding in HTML (no XML declaration).

    Only module geometry is in it (the link is encoded, never written out), so it is safe as Markup.
    """
    import qrcode.image.svg

    image = _qr(link).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    return Markup(image.to_string(encoding="unicode"))


# ---------------------------------------------------------------------------------------------------
# The poster


_MD_HEADING = re.compile(r"^\s*#{1,6}\s")
_MD_LINE = re.compile(r"^\s*(?:>\s*|[-*+]\s+|\d{1,3}[.)]\s+)+")
_MD_RULE = re.compile(r"^\s*(?:[-*_]\s*){3,}$")
_MD_IMAGE_OR_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|_|~~)(?=\S)(.+?)(?<=\S)\1")
# A sentence ends at . ! ? … followed by space and a word that is not lowercase: "1.500.000 đồng" and
# "v.v. và" stay whole.
_SENTENCE_END = re.compile(r"[.!?…][\"”')\]]*\s+")
# The loudspeaker opening ("Kính thưa bà con!") says nothing on paper.
_GREETING = re.compile(r"^(?:kính\s+)?(?:thưa|chào|xin\s+chào)\b", re.IGNORECASE)


def _plain_lines(text: str) -> list[str]:
    """Markdown markup and headings stripped, one entry per non-empty source line."""
    lines: list[str] = []
    for line in unicodedata.normalize("NFC", text).split("\n"):
        # Headings repeat the title or name a section: neither tells a passer-by what the bulletin says.
        if _MD_RULE.match(line) or _MD_HEADING.match(line):
            continue
        line = _MD_LINE.sub("", line)
        line = _MD_IMAGE_OR_LINK.sub(r"\1", line)
        line = _MD_EMPHASIS.sub(r"\2", line)
        line = line.replace("`", "")
        line = " ".join(line.split())
        if line:
            lines.append(line)
    return lines


def _split_sentences(line: str) -> list[str]:
    out: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(line):
        if match.end() < len(line) and line[match.end()].islower():
            continue
        out.append(line[start : match.end()].strip())
        start = match.end()
    out.append(line[start:].strip())
    return [s for s in out if s]


def _sentences(text: str) -> list[str]:
    # Lines are split first: a heading or a list item without a full stop is still a unit of its own.
    out: list[str] = []
    for line in _plain_lines(text):
        out.extend(_split_sentences(line))
    return [s for s in out if not (len(s) <= 80 and _GREETING.match(s))] or out


def _wrap(text: str, limit: int) -> tuple[str, str]:
    """(head of at most ``limit`` characters cut at a space, the rest); a longer single word is cut hard."""
    if len(text) <= limit:
        return text, ""
    cut = text.rfind(" ", 0, limit + 1)
    if cut <= 0:
        return text[:limit], text[limit:].lstrip()
    return text[:cut].rstrip(), text[cut:].lstrip()


def summary_lines(text: str, max_chars: int = 160) -> tuple[str, str]:
    """A two-line teaser of the bulletin body for the poster, together at most ``max_chars`` characters.

    Each line holds at most half the budget.  Line one is the first sentence (greetings such as "Kính
    thưa bà con!" and Markdown headings are skipped), line two the sentences that follow; a sentence
    that does not fit flows on at a word boundary, and a cut-off second line ends with "…".  Markdown
    markup is removed; text is NFC, so every Vietnamese letter is one character and a cut never splits
    a letter from its tone mark.
    """
    half = max(max_chars // 2, 2)
    sentences = _sentences(text)
    if not sentences:
        return "", ""
    first, rest = _wrap(sentences[0], half)
    pending = ([rest] if rest else []) + sentences[1:]
    second = ""
    for sentence in pending:
        joined = f"{second} {sentence}".strip()
        if len(joined) <= half:
            second = joined
            continue
        if not second:
            # Room for the ellipsis: the line stays within its half of the budget.
            head, _ = _wrap(sentence, half - 1)
            second = head.rstrip(" ,;:–-") + "…"
        break
    return first, second


@functools.cache
def _environment() -> Environment:
    # FileSystemLoader next to this module: works from a checkout, an editable install and a wheel that
    # ships playout/templates/.  Autoescape everywhere: titles and summaries come from office files.
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def poster_html(
    bulletin: Bulletin, link: str, *, station_name: str, programme: str = DEFAULT_PROGRAMME
) -> str:
    """A printable A5 portrait poster (HTML) for one bulletin: title, QR code, summary, motto, link."""
    first, second = summary_lines(bulletin.script.body)
    template = _environment().get_template("poster.html")
    html = template.render(
        programme=programme,
        title=bulletin.title,
        topic=TOPICS.get(bulletin.topic or ""),
        department=bulletin.script.meta.department,
        summary=[line for line in (first, second) if line],
        motto=MOTTO,
        station_name=station_name,
        link=link,
        qr_svg=_qr_svg_inline(link),
        long_title=len(bulletin.title) > 90,
    )
    logger.debug("poster for bulletin %s rendered (%d chars)", bulletin.id[:12], len(html))
    return html
