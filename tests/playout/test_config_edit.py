"""Adding an account to an operator's own schedule.yaml: their comments and layout stay, the result is
checked before it replaces the file, and a layout that cannot be edited safely is left alone."""

from __future__ import annotations

import pytest
import yaml

from playout.accounts import hash_password
from playout.config import load_config
from playout.config_edit import add_account
from playout.errors import ConfigError

HASH = hash_password("mat-khau-cua-lan")

LAYOUTS = {
    "empty": "",
    "no auth": "# Trạm phường Đông Hải\ntimezone: Asia/Ho_Chi_Minh  # giờ Việt Nam\nwindows: []\n",
    "auth, tokens only": (
        "windows: []\nauth:\n  # máy quét\n  tokens:\n"
        "    - {name: may, token_hash: 'sha256$" + "a" * 64 + "', roles: [operator]}\n"
        "qr: {station_name: Đài phường}\n"
    ),
    "accounts, block items": (
        "auth:\n  accounts:\n  - name: hoa\n    password_hash: '" + HASH + "'\n    roles:\n    - operator\n"
        "  session_hours: 8\n# cuối tệp\n"
    ),
    "accounts, flow items, deeper indent": (
        "windows: []\nauth:\n    accounts:\n"
        "        - {name: hoa, password_hash: '" + HASH + "', roles: [operator]}\n"
        "    session_hours: 8\n"
    ),
    "empty list": "auth:\n  accounts: []  # chưa có ai\n",
    "empty section on one line": "windows: []\nauth: {}\nqr: {station_name: Đài phường}\n",
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_an_account_is_added_and_everything_else_kept(tmp_path, layout):
    path = tmp_path / "schedule.yaml"
    before = LAYOUTS[layout]
    path.write_text(before, "utf-8")
    add_account(path, "lan", HASH, ["technician", "approver"])
    after = path.read_text("utf-8")
    config = load_config(path)
    assert [a.name for a in config.auth.accounts][-1] == "lan"
    assert config.auth.accounts[-1].roles == ["technician", "approver"]
    for line in before.splitlines():
        if line.strip().startswith("#") or "#" in line and "[]" not in line:
            assert line in after  # the operators' comments survive
    old = yaml.safe_load(before) or {}
    new = yaml.safe_load(after)
    assert {k: v for k, v in new.items() if k != "auth"} == {k: v for k, v in old.items() if k != "auth"}


def test_refusals_leave_the_file_exactly_as_it_was(tmp_path):
    path = tmp_path / "schedule.yaml"
    flow = "auth: {accounts: [{name: hoa, password_hash: '" + HASH + "', roles: [operator]}]}\n"
    path.write_text(flow, "utf-8")
    with pytest.raises(ConfigError) as caught:
        add_account(path, "lan", HASH, ["admin"])
    assert "Hãy tự thêm các dòng sau" in caught.value.message and "name: lan" in caught.value.message
    assert path.read_text("utf-8") == flow
    with pytest.raises(ConfigError, match="Đã có tài khoản"):
        add_account(path, "hoa", HASH, ["admin"])
    broken = "windows: [\n"
    path.write_text(broken, "utf-8")
    with pytest.raises(ConfigError, match="lỗi cú pháp"):
        add_account(path, "lan", HASH, ["admin"])
    assert path.read_text("utf-8") == broken
    invalid = "relay: {pin: 99}\n"
    path.write_text(invalid, "utf-8")
    with pytest.raises(ConfigError):
        add_account(path, "lan", HASH, ["admin"])
    assert path.read_text("utf-8") == invalid


def test_playout_account_add_writes_the_file_and_asks_nothing_twice(playout_cmd, tmp_path):
    import subprocess

    cfg = tmp_path / "schedule.yaml"
    cfg.write_text("# trạm thử\nwindows: []\n", "utf-8")

    def add(*args, password="mat-khau-cua-lan"):
        return subprocess.run(
            [*playout_cmd, "account", "add", *args, "--config", str(cfg)],
            input=password + "\n",
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = add("lan", "--role", "technician")
    assert done.returncode == 0, done.stderr
    assert "Đã thêm tài khoản “lan”" in done.stdout and "# trạm thử" in cfg.read_text("utf-8")
    assert load_config(cfg).auth.accounts[0].name == "lan"
    again = add("lan", "--role", "admin")
    assert again.returncode == 1 and "Đã có tài khoản" in again.stderr
    short = add("hoa", "--role", "operator", password="ngan")
    assert short.returncode == 2 and "ít nhất 8 ký tự" in short.stderr
    bad = add("Hoa Nguyen", "--role", "operator")
    assert bad.returncode == 2 and "a-z" in bad.stderr
    assert [a.name for a in load_config(cfg).auth.accounts] == ["lan"]
