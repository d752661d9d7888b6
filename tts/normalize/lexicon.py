"""The lexicon: the shipped tts/data/lexicon.tsv, the operators' station lexicon on top of it, and the
passes that read its entries (and spell the all-capital abbreviations it does not know).

A Lexicon is built whole and never changed afterwards. One of them is in force (lexicon_in_force());
load_station_lexicon() builds the next one aside and puts it in force in a single assignment. A render
takes the lexicon once and uses that object to its end, so a station file replaced by the daemon's
thread while another thread renders gives that render the old lexicon or the new one, never a mix.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tts.normalize.letters import (
    _ASCII_LETTERS,
    _is_initial_context,
    _is_vietnamese_word,
    _single_letters,
    _spell,
)
from tts.normalize.numbers import _read_digits
from tts.normalize.spans import _NA, _NB, _SENTINELS, _sub_free, _sub_free_in_context, _txt, guess, heuristic

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------
# Lexicon (tts/data/lexicon.tsv)
# ---------------------------------------------------------------------------------------------------
_KINDS = ("abbr", "title", "word", "domain")
LEXICON_CODE = "LEXICON_ENTRY_INVALID"
_MAX_STATION_LEXICON_BYTES = 1024 * 1024
_MAX_WRITTEN = 80
_MAX_SPOKEN = 300
# A spoken form is Vietnamese words: letters, spaces, and the hyphen or apostrophe some spellings use.
_SPOKEN_OK = re.compile(r"[^\W\d_]+(?:[ '’-]+[^\W\d_]+)*")


@dataclass(frozen=True)
class LexiconProblem:
    """One line of the station lexicon that could not be used, said so the operator can fix it."""

    line: int  # 0: the file as a whole
    message: str  # Vietnamese
    text: str = ""
    code: str = LEXICON_CODE

    def __str__(self) -> str:
        where = f"dòng {self.line}: " if self.line else ""
        return f"[{self.code}] {where}{self.message}"


@dataclass(frozen=True)
class StationLexicon:
    """The station's own lexicon as loaded: how many entries are in force and what was refused."""

    path: Path | None
    entries: int = 0
    problems: tuple[LexiconProblem, ...] = ()
    digest: str = ""  # sha256 of the file in force ("" without one): a change means re-rendering
    applied: bool = True  # False: the file could not be read and the previous entries stay in force

    def to_dict(self) -> dict:
        return {
            "path": str(self.path) if self.path else None,
            "entries": self.entries,
            "applied": self.applied,
            "problems": [{"line": p.line, "code": p.code, "message": p.message} for p in self.problems],
        }


_Entry = tuple[str, str, str]  # written, spoken, kind
_NO_STATION_FILE = StationLexicon(path=None)


def _read_lexicon_file() -> str:
    try:
        return resources.files("tts").joinpath("data").joinpath("lexicon.tsv").read_text(encoding="utf-8")
    except (OSError, TypeError, ValueError, ImportError) as exc:
        # An editable install can expose ``tts`` as a namespace package, which importlib.resources
        # cannot read in Python 3.11; the file sits in tts/data, next to this package, either way.
        logger.debug("importlib.resources could not read the lexicon (%s); reading it from disk", exc)
        return (Path(__file__).parent.with_name("data") / "lexicon.tsv").read_text(encoding="utf-8")


def _split_entry(raw: str) -> list[str]:
    # Operators edit the station file in any editor: a TAB is the separator, and where an editor turned
    # tabs into spaces, "WRITTEN = SPOKEN" is accepted too.
    sep = "\t" if "\t" in raw else "="
    return [c.strip() for c in raw.split(sep)]


def _check_entry(cols: list[str]) -> tuple[_Entry | None, str | None]:
    """(entry, None) or (None, why in Vietnamese)."""
    if len(cols) == 2:
        cols = [*cols, "abbr" if cols[0].isupper() else "word"]
    if len(cols) != 3:
        return None, "cần dạng CHỮ VIẾT<TAB>CÁCH ĐỌC (hoặc CHỮ VIẾT = CÁCH ĐỌC), có thể thêm <TAB>LOẠI"
    written, spoken, kind = cols[0], " ".join(cols[1].lower().split()), cols[2].lower()
    if not written:
        return None, "thiếu chữ viết (cột đầu)"
    if not spoken:
        return None, f"thiếu cách đọc cho {written!r}"
    if kind not in _KINDS:
        return None, f"loại {cols[2]!r} không có; dùng abbr, title, word hoặc domain"
    if len(written) > _MAX_WRITTEN or len(spoken) > _MAX_SPOKEN:
        return None, f"quá dài (chữ viết tối đa {_MAX_WRITTEN}, cách đọc tối đa {_MAX_SPOKEN} ký tự)"
    if _SENTINELS.search(written) or not any(ch.isalnum() for ch in written):
        return None, f"chữ viết {written!r} phải có chữ cái hoặc chữ số"
    if any(ch.isdigit() for ch in spoken):
        return None, f"cách đọc của {written!r} có chữ số; hãy viết số bằng chữ (ví dụ 'bốn gờ')"
    if not _SPOKEN_OK.fullmatch(spoken):
        return None, f"cách đọc của {written!r} chỉ được gồm chữ cái và dấu cách"
    return (written, spoken, kind), None


def _lexicon_entries(source: str, origin: str) -> tuple[list[_Entry], list[LexiconProblem]]:
    entries: list[_Entry] = []
    problems: list[LexiconProblem] = []
    seen: dict[tuple[str, str], int] = {}
    for number, raw in enumerate(source.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        entry, why = _check_entry(_split_entry(raw))
        if entry is None:
            problems.append(LexiconProblem(number, f"bỏ qua: {why}", text=line[:200]))
            logger.warning("%s line %d ignored: %s", origin, number, why)
            continue
        key = (entry[0], entry[2])
        if key in seen:
            problems.append(
                LexiconProblem(
                    number, f"{entry[0]!r} đã có ở dòng {seen[key]}; dùng dòng này", text=line[:200]
                )
            )
        seen[key] = number
        entries.append(entry)
    return entries, problems


class Lexicon:
    """The entries the passes read: the shipped ones with the station's on top, and their lookups.

    Built whole from its entries and never changed afterwards (see the module docstring). ``state`` is
    the report of the station file these station entries came from, ``digest`` a sha256 of the entries
    in force: the same entries give the same digest, so a change means the readings may have changed.
    """

    def __init__(
        self,
        shipped: Iterable[_Entry] = (),
        station: Iterable[_Entry] = (),
        state: StationLexicon = _NO_STATION_FILE,
    ) -> None:
        self.shipped: tuple[_Entry, ...] = tuple(shipped)
        self.station: tuple[_Entry, ...] = tuple(station)
        self.state = state
        self.exact: dict[str, str] = {}  # abbr, title, word: as written
        self.folded: dict[str, str] = {}  # word: casefolded
        # word and domain entries, casefolded, for web addresses; abbreviations are spelled there ("ubnd"
        # "u bê en dê"), since a listener has to type the letters
        self.address: dict[str, str] = {}
        self.pattern: re.Pattern[str] | None = None  # matches any abbr/title/word entry in running text
        # pieces of a web-address label: "ubnd" in "ubndphuong" (spelled), "dichvucong" in
        # "dichvucongtructuyen"
        self.address_chunks: dict[str, tuple[float, str]] = {}
        self._build(self.shipped, self.station)
        self.digest = _entries_digest(self.shipped, self.station)

    def _build(self, *layers: tuple[_Entry, ...]) -> None:
        """The lookups from layers of entries; a later layer (the station's file) overrides an earlier one."""
        alternatives: dict[str, str] = {}
        titles = set()
        for entries in layers:
            # Web-address parts: word entries first, then domain entries, so within a layer "domain" wins.
            for kind_order in (("word",), ("domain",)):
                for written, spoken, kind in entries:
                    if kind in kind_order:
                        self.address[written.casefold()] = spoken
            for written, spoken, kind in entries:
                if kind == "domain":
                    continue
                self.exact[written] = spoken
                if kind == "word":
                    self.folded[written.casefold()] = spoken
                    alternatives[written] = f"(?i:{re.escape(written)})"
                else:
                    alternatives[written] = re.escape(written)
                    if kind == "title":
                        titles.add(written)
                        if len(written) == 1:
                            # A one-letter title ("P" phường) is read only with its dot: a bare capital
                            # letter is a letter ("khu P", "viêm gan B").
                            del alternatives[written]
                    else:
                        titles.discard(written)
        for written, _spoken, kind in (e for entries in layers for e in entries):
            key = written.casefold()
            if kind in ("abbr", "title") and len(key) >= 2 and set(key) <= _ASCII_LETTERS:
                self.address_chunks.setdefault(key, (1.5, _spell(written)))
        self.address_chunks.update(
            {k: (0.9, v) for k, v in self.address.items() if len(k) >= 4 and set(k) <= _ASCII_LETTERS}
        )
        if alternatives or titles:
            # Longest first, so "UBMTTQVN" wins over "UBMTTQ" and "TP.HCM" over "TP".
            keys = sorted(alternatives, key=len, reverse=True)
            title_alt = "|".join(re.escape(t) for t in sorted(titles, key=len, reverse=True))
            body = "|".join(alternatives[k] for k in keys) or "(?!)"
            title_part = rf"(?P<title>{title_alt})\.(?=[ \t]*(?:[^\W_]|[\ue000\ue002]))|" if titles else ""
            self.pattern = re.compile(rf"{_NB}(?:{title_part}(?P<entry>{body}){_NA})")

    def lookup(self, written: str) -> str | None:
        """The spoken form of an abbr, title or word entry as written in running text (words in any case)."""
        return self.exact.get(written) or self.folded.get(written.casefold())

    def address_part(self, run: str) -> str | None:
        """The spoken form of a run of letters in a web address, from the word and domain entries."""
        return self.address.get(run.casefold())

    def with_state(self, state: StationLexicon) -> Lexicon:
        """The same entries and lookups with another report (a station file that could not be read)."""
        other = copy.copy(self)  # the lookups are shared: neither copy ever changes them
        other.state = state
        return other

    def __repr__(self) -> str:
        return f"Lexicon(shipped={len(self.shipped)}, station={len(self.station)}, digest={self.digest[:12]})"


def _entries_digest(*layers: tuple[_Entry, ...]) -> str:
    digest = hashlib.sha256()
    for layer in layers:
        for entry in layer:
            digest.update("\t".join(entry).encode("utf-8") + b"\n")
        digest.update(b"\x00")  # where a layer ends: the order of the layers decides which entry wins
    return digest.hexdigest()


def _parse_lexicon(source: str) -> Lexicon:
    return Lexicon(_lexicon_entries(source, "lexicon.tsv")[0])


@functools.lru_cache(maxsize=1)
def _shipped_entries() -> tuple[_Entry, ...]:
    try:
        return tuple(_lexicon_entries(_read_lexicon_file(), "lexicon.tsv")[0])
    except (OSError, UnicodeDecodeError) as exc:
        logger.error("lexicon.tsv unreadable (%s): abbreviations will be spelled letter by letter", exc)
        return ()


# The lexicon in force: None until first used (importing this module reads no file). Readers take it with
# one read of the name and never lock; the writers (first build, station file, tests) hold _writer, so
# two of them cannot build from the same previous lexicon and lose one another's change.
_in_force: Lexicon | None = None
_writer = threading.Lock()


def _in_force_locked() -> Lexicon:
    """The lexicon in force, built from the shipped file on first use; the caller holds _writer."""
    global _in_force
    if _in_force is None:
        _in_force = Lexicon(_shipped_entries())
    return _in_force


def lexicon_in_force() -> Lexicon:
    """The lexicon renders use unless given one: the shipped entries and the station's loaded last."""
    lex = _in_force
    if lex is None:
        with _writer:
            lex = _in_force_locked()
    return lex


def _reset_lexicon() -> None:
    """Build the lexicon in force again from the shipped file (tests replace it); the station's entries
    stay."""
    global _in_force
    with _writer:
        _shipped_entries.cache_clear()
        if _in_force is not None:
            _in_force = Lexicon(_shipped_entries(), _in_force.station, _in_force.state)


def station_lexicon() -> StationLexicon:
    """The station lexicon in force (path, entries, problems)."""
    lex = _in_force
    return lex.state if lex is not None else _NO_STATION_FILE


def load_station_lexicon(path: Path | str | None) -> StationLexicon:
    """Read the operators' lexicon file and put it in force on top of the shipped one.

    A missing file is no error (the station has no words of its own yet). A line that cannot be used is
    skipped and reported, the rest is in force. A file that cannot be read at all (wrong encoding, too
    large, unreadable) is reported and the entries loaded before stay in force: an edit half-saved by
    an editor must not make the station spell "UBND" for a day.
    """
    global _in_force
    path = Path(path) if path is not None else None
    with _writer:
        lex = _station_lexicon_from(path, _in_force_locked())
        _in_force = lex  # the one assignment that puts it in force
    return lex.state


def _station_lexicon_from(path: Path | None, previous: Lexicon) -> Lexicon:
    """The lexicon the station file at ``path`` makes; ``previous`` with a report if it cannot be read."""
    problems: list[LexiconProblem] = []
    entries: list[_Entry] = []
    digest = ""
    if path is not None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raw = b""
        except OSError as exc:
            return _keep_previous(
                previous, path, f"không đọc được tệp ({exc.strerror})", "LEXICON_UNREADABLE"
            )
        if len(raw) > _MAX_STATION_LEXICON_BYTES:
            return _keep_previous(previous, path, "tệp quá lớn (tối đa 1 MB)", "LEXICON_TOO_LARGE")
        try:
            source = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            return _keep_previous(previous, path, "tệp phải được lưu bằng mã UTF-8", "LEXICON_ENCODING")
        source = unicodedata.normalize("NFC", source)
        entries, problems = _lexicon_entries(source, str(path))
        digest = hashlib.sha256(raw).hexdigest() if raw else ""
    state = StationLexicon(path, len(entries), tuple(problems), digest)
    return Lexicon(_shipped_entries(), entries, state)


def _keep_previous(previous: Lexicon, path: Path, why: str, code: str) -> Lexicon:
    logger.error("station lexicon %s not applied (%s): the previous entries stay in force", path, code)
    problem = LexiconProblem(0, f"{why}; các mục đã nạp trước vẫn được dùng", code=code)
    state = StationLexicon(path, len(previous.station), (problem,), previous.state.digest, applied=False)
    return previous.with_state(state)


# ---------------------------------------------------------------------------------------------------
# Lexicon pass and unknown all-capital abbreviations
# ---------------------------------------------------------------------------------------------------
# Abbreviations whose reading the words next to them decide, so no lexicon entry can hold them:
#   TT   "TT 33/2015/TT-BYT", "TT số 12": a circular (thông tư) before its number; "TT. Long Hải": a town
#        (thị trấn) with its dot before a name. Bare "TT" before a name is also "trung tâm": spelled.
#   SN   "(SN 2004)": sinh năm before a year; before a house number it is "số nhà": spelled.
#   CP   "Công ty CP Môi trường": cổ phần after "công ty"; elsewhere ("NĐ-CP" aside) often "chính phủ".
_CONTEXT_ABBR = re.compile(rf"{_NB}(?P<abbr>TT|SN|CP){_NA}(?P<dot>\.)?")
_NUMBER_AHEAD = re.compile(r"[ \t]*(?:(?i:số)[ \t]*)?[0-9\ue000]")
_YEAR_AHEAD = re.compile(
    r"[ \t]*:?[ \t]*(?:(?:19|20)[0-9]{2}(?![0-9])|\ue000(?:một nghìn chín trăm|hai nghìn))"
)
_COMPANY_BEFORE = re.compile(r"(?<![^\W_])(?i:công ty|cty)[ \t]+$")


def _context_abbr_repl(m: re.Match[str]) -> str:
    abbr, dot = m.group("abbr"), m.group("dot") or ""
    before, after = m.string[: m.start()], m.string[m.end() :]
    spoken = None
    if abbr == "TT" and _NUMBER_AHEAD.match(after):
        heuristic("“TT” đứng trước số văn bản: đọc là thông tư")
        spoken = "thông tư"
    elif abbr == "TT" and dot and after.lstrip()[:1].isupper():
        heuristic("“TT.” đứng trước tên riêng: đọc là thị trấn")
        return _txt("thị trấn")
    elif abbr == "SN" and _YEAR_AHEAD.match(after):
        heuristic("“SN” đứng trước năm: đọc là sinh năm")
        spoken = "sinh năm"
    elif abbr == "CP" and _COMPANY_BEFORE.search(before):
        heuristic("“CP” đứng sau “công ty”: đọc là cổ phần")
        spoken = "cổ phần"
    if spoken is None:
        return m.group()  # spelled by _spell_unknown_caps, as a guess
    return _txt(spoken) + dot


# "P14, Q10" / "P.14, Q.10": the ward and district of a Ho Chi Minh City address, written as a pair. A
# lone "P2" or "Q1" is as often a code (a parking level, a zone), so only the pair is read.
_WARD_DISTRICT = re.compile(
    rf"{_NB}P\.?[ \t]?(?P<p>[0-9]{{1,2}})[ \t]*,?[ \t]*Q\.?[ \t]?(?P<q>[0-9]{{1,2}}){_NA}"
)


def _ward_district_repl(m: re.Match[str]) -> str:
    heuristic("cặp “P…, Q…” trong địa chỉ: đọc là phường, quận")
    return f"{_txt('phường')} {m.group('p')}, {_txt('quận')} {m.group('q')}"


# "PC02", "PA05", "PK02": police and army unit codes, capitals glued to a number with a leading zero.
# The zero is part of the name, so the digits are read one by one ("pê xê không hai"), the letters spelled.
_UNIT_CODE = re.compile(rf"{_NB}(?P<letters>[A-ZĐ]{{2,4}})(?P<digits>0[0-9]{{1,2}}){_NA}")


def _unit_code_repl(m: re.Match[str]) -> str:
    return _txt(f"{_spell(m.group('letters'))} {_read_digits(m.group('digits'))}")


def _lexicon_pass(line: str, shouting: bool, lex: Lexicon) -> str:
    line = _sub_free_in_context(_CONTEXT_ABBR, _context_abbr_repl, line)
    line = _sub_free(_WARD_DISTRICT, _ward_district_repl, line)
    line = _sub_free(_UNIT_CODE, _unit_code_repl, line)
    if lex.pattern is not None:
        line = _entries_pass(line, shouting, lex)
    return _single_letters(line)


def _entries_pass(line: str, shouting: bool, lex: Lexicon) -> str:
    def repl(m: re.Match[str]) -> str:
        if m.group("title"):
            written = m.group("title")
            after = m.string[m.end() :].lstrip()
            if len(written) == 1 and not after[:1].isdigit() and _is_initial_context(m.string[: m.start()]):
                # "chị H. Trần", "anh P.V.D": an initial, read as a letter by _single_letters
                heuristic(
                    f"“{written}.” đứng sau tên người hoặc “anh”, “chị”...: đọc là chữ cái viết tắt tên"
                )
                return m.group()
            if len(written) == 1:
                heuristic(f"“{written}.” đứng trước địa danh hoặc số: đọc là {lex.exact[written]}")
            spoken = lex.exact[written]
            # "TP. Hồ Chí Minh", "KP. 3": an abbreviation dot. "... của TP. người dân": a sentence end.
            continues = after[:1].isupper() or after[:1].isdigit() or after[:1] in "\ue000\ue002"
            return _txt(spoken) + ("" if continues else ".")
        written = m.group("entry")
        if shouting and written.isupper() and _is_vietnamese_word(written):
            return written  # "KHÔNG AI BỊ BỎ LẠI": the word "ai", not the abbreviation AI
        spoken = lex.lookup(written)
        if not spoken:
            return written
        if written.endswith("."):  # "v.v." at the end of a sentence also ends it
            after = m.string[m.end() :].lstrip()
            return _txt(spoken) + ("." if not after or after[0].isupper() else "")
        return _txt(spoken)

    return _sub_free_in_context(lex.pattern, repl, line)


_CAPS_TOKEN = re.compile(rf"{_NB}[^\W\d_]{{2,}}{_NA}")


def _spell_unknown_caps(line: str) -> str:
    def repl(m: re.Match[str]) -> str:
        token = m.group()
        if not token.isupper() or _is_vietnamese_word(token):
            return token
        logger.debug("unknown abbreviation %r spelled letter by letter", token)
        guess("chữ viết tắt không có trong từ điển: đọc từng chữ cái")
        return _txt(_spell(token))

    return _sub_free(_CAPS_TOKEN, repl, line)
