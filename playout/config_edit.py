"""Small, safe edits of ``schedule.yaml`` made by the station itself: adding an account.

The file is the operators' own, with their comments and layout, so it is never rewritten from parsed
data.  The new entry is inserted as one line of text where it belongs (``auth:`` → ``accounts:``), and the
result is accepted only if it parses to exactly the old settings plus the new account and passes the
whole config validation; then it replaces the file atomically.  A layout this cannot edit safely (flow
style, anchors, an ``auth`` written on one line) is refused with the lines to paste by hand.

    add_account(Path("schedule.yaml"), "lan", hash_password(pw), ["technician"])
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from playout.atomic import atomic_write_text
from playout.errors import ConfigError

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w-]*)\s*:(?P<rest>.*)$")


def account_entry(name: str, password_hash: str, roles: list[str]) -> str:
    """The account as one YAML flow mapping (the form ``playout passwd`` and the README show)."""
    return f"{{name: {name}, password_hash: '{password_hash}', roles: [{', '.join(roles)}]}}"


def snippet(name: str, password_hash: str, roles: list[str]) -> str:
    """Lines an operator can paste into schedule.yaml (merging with an ``auth:`` section already there)."""
    return f"auth:\n  accounts:\n    - {account_entry(name, password_hash, roles)}\n"


def add_account(path: Path, name: str, password_hash: str, roles: list[str]) -> None:
    """Add an account to ``auth.accounts`` of the config file at ``path`` (created if missing).

    ConfigError (Vietnamese message) when the file is invalid now, the name is taken, or the layout cannot
    be edited safely; the file is then left exactly as it was.
    """
    from playout.config import parse_config

    path = Path(path)
    text = path.read_text("utf-8") if path.exists() else ""
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name} đang lỗi cú pháp; sửa tệp trước khi thêm tài khoản: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name} không phải một bảng cấu hình; sửa tệp trước khi thêm tài khoản")
    before = parse_config(data, base=path.parent)  # ConfigError with every problem if the file is invalid now
    if any(a.name == name for a in [*before.auth.accounts, *before.auth.tokens]):
        raise ConfigError(f"Đã có tài khoản hoặc token tên “{name}” trong {path.name}")
    entry = account_entry(name, password_hash, roles)
    candidate = _insert(text, data, entry)
    expected = dict(data)
    auth = dict(expected.get("auth") or {})
    added = {"name": name, "password_hash": password_hash, "roles": roles}
    auth["accounts"] = [*(auth.get("accounts") or []), added]
    expected["auth"] = auth
    try:
        parsed = yaml.safe_load(candidate) if candidate is not None else None
    except yaml.YAMLError:
        parsed = None
    if candidate is None or parsed != expected:
        raise ConfigError(
            f"Không tự thêm được tài khoản vào {path.name} (cách viết phần auth khác thường). "
            f"Hãy tự thêm các dòng sau vào tệp:\n{snippet(name, password_hash, roles)}"
        )
    parse_config(parsed, base=path.parent)  # the whole config still validates with the new account
    atomic_write_text(path, candidate)


def _insert(text: str, data: dict, entry: str) -> str | None:
    """``text`` with ``entry`` added as the last item of auth.accounts, or None when unsure how."""
    lines = text.splitlines()
    trailer = "\n"
    if "auth" not in data:
        body = text if not text or text.endswith("\n") else text + "\n"
        return body + f"auth:\n  accounts:\n    - {entry}\n"
    auth_at = _top_level_key(lines, "auth")
    if auth_at is None:
        return None
    inline = _KEY.match(lines[auth_at]).group("rest").split("#", 1)[0].strip()
    if inline in ("{}", "null", "~"):  # an empty section written on one line becomes a block
        new = ["auth:", "  accounts:", f"    - {entry}"]
        return "\n".join(lines[:auth_at] + new + lines[auth_at + 1 :]) + trailer
    if inline:
        return None  # "auth: {...}" with content on one line, or an alias
    block = _block(lines, auth_at, 0)
    child = _child_indent(lines, block)
    keys = {i: m for i in block if (m := _KEY.match(lines[i])) and len(m.group("indent")) == child}
    accounts_at = next((i for i, m in keys.items() if m.group("key") == "accounts"), None)
    if accounts_at is None:
        new = [" " * child + "accounts:", " " * (child + 2) + f"- {entry}"]
        return "\n".join(lines[: auth_at + 1] + new + lines[auth_at + 1 :]) + trailer
    rest = _KEY.match(lines[accounts_at]).group("rest").split("#", 1)[0].strip()
    if rest == "[]":
        new = [" " * child + "accounts:", " " * (child + 2) + f"- {entry}"]
        return "\n".join(lines[:accounts_at] + new + lines[accounts_at + 1 :]) + trailer
    if rest:
        return None  # a flow list on the same line: not edited by hand here
    items = _block(lines, accounts_at, child, allow_same_indent_dash=True)
    dashes = [i for i in items if lines[i].lstrip().startswith("- ")]
    if not dashes:
        return None
    indent = len(lines[dashes[0]]) - len(lines[dashes[0]].lstrip())
    last = items[-1]
    return "\n".join(lines[: last + 1] + [" " * indent + f"- {entry}"] + lines[last + 1 :]) + trailer


def _meaningful(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _top_level_key(lines: list[str], key: str) -> int | None:
    for i, line in enumerate(lines):
        m = _KEY.match(line)
        if m and not m.group("indent") and m.group("key") == key:
            return i
    return None


def _block(lines: list[str], head: int, indent: int, *, allow_same_indent_dash: bool = False) -> list[int]:
    """Meaningful lines after ``head`` that belong to it (indented deeper, or list dashes at its indent)."""
    out = []
    for i in range(head + 1, len(lines)):
        line = lines[i]
        if not _meaningful(line):
            continue
        depth = len(line) - len(line.lstrip())
        if depth > indent or (allow_same_indent_dash and depth == indent and line.lstrip().startswith("- ")):
            out.append(i)
        else:
            break
    return out


def _child_indent(lines: list[str], block: list[int]) -> int:
    for i in block:
        return len(lines[i]) - len(lines[i].lstrip())
    return 2
