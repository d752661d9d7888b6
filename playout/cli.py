"""The ``playout`` command.

Operators read its messages (Vietnamese); programs read its JSON on stdout and the stable error code in
square brackets on stderr.  Exit status: 0 done, 1 a script or render was refused, 2 bad usage or config.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from playout import __version__
from playout.errors import ConfigError, PlayoutError

logger = logging.getLogger("playout")

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
ROLE_NAMES = ("operator", "approver", "technician", "admin")  # playout.accounts.ROLES, without importing it


def _config_path(arg: str | None) -> Path | None:
    """--config, else $PLAYOUT_CONFIG, else ./schedule.yaml when present, else the embedded defaults."""
    if arg:
        return Path(arg)
    if os.environ.get("PLAYOUT_CONFIG"):
        return Path(os.environ["PLAYOUT_CONFIG"])
    here = Path("schedule.yaml")
    return here if here.is_file() else None


def _load(args):
    from playout.config import load_config

    return load_config(_config_path(args.config))


def _station_words(config) -> None:
    """Put the station lexicon in force for this command; say on stderr what in it was refused."""
    from tts.normalize import load_station_lexicon

    state = load_station_lexicon(config.paths.lexicon)
    for problem in state.problems:
        print(f"playout: từ điển {state.path.name}: {problem}", file=sys.stderr)


def _fail(exc: PlayoutError, prefix: str = "") -> None:
    print(f"playout: {prefix}[{exc.code}] {exc.message}", file=sys.stderr)


def _progress(items: Sequence, desc: str):
    # Several files: show progress on stderr (stdout carries JSON).  One file: no bar (and no tqdm).
    if len(items) < 2:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="bản tin", file=sys.stderr, mininterval=0.2, ascii=True)


def _expand(paths: Sequence[str]) -> list[Path]:
    from playout.intake import is_script_file

    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if is_script_file(f)))
        else:
            out.append(p)
    return out


# -- commands -------------------------------------------------------------------------------------------


def cmd_render(args) -> int:
    # Imports follow the work: a refused script needs intake only, a cached one the render cache, and
    # the audio libraries and speech engines (tts.render) come in with the first script to synthesize.
    from playout.atomic import atomic_writer
    from playout.intake import read_script

    config = _load(args)
    _station_words(config)
    scripts = _expand(args.scripts)
    if not scripts:
        print("playout: không có kịch bản nào để đọc", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.output) if args.output else None
    many = len(scripts) > 1
    if many and out is not None and out.suffix.lower() == ".wav":
        print("playout: khi đọc nhiều kịch bản, -o phải là một thư mục", file=sys.stderr)
        return EXIT_USAGE
    engines = [args.engine] if args.engine else None
    renderer = None
    status = EXIT_OK
    try:
        for path in _progress(scripts, "Đang đọc"):
            try:
                script = read_script(path)
                # Imported once intake has accepted a script: a refusal needs not even the cache's reader.
                from tts.request import find_cached

                result = find_cached(config, script, engines=engines)
                if result is None:
                    if renderer is None:
                        from tts.render import Renderer

                        renderer = Renderer(config, engines=engines)
                    result = renderer.render(script)
            except PlayoutError as exc:
                _fail(exc, f"{path.name}: " if many else "")
                status = EXIT_REFUSED
                continue
            summary = dict(result.summary)
            target = result.path
            if out is not None:
                target = (out / f"{path.stem}.wav") if many or out.is_dir() else out
                with result.path.open("rb") as src, atomic_writer(target) as dst:
                    shutil.copyfileobj(src, dst)
            summary["output"] = str(target)
            print(json.dumps(summary, ensure_ascii=False), flush=True)
    finally:
        if renderer is not None:
            renderer.close()
    return status


def _human_duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} phút {s:02d} giây" if m else f"{s} giây"


def cmd_check(args) -> int:
    from playout.intake import read_script
    from tts.plan import Planner  # estimates only: not tts.render, which loads the DSP and the WAV writer

    config = _load(args)
    _station_words(config)
    planner = Planner(config, engines=[args.engine] if args.engine else None)
    status = EXIT_OK
    for path in _expand(args.scripts):
        try:
            script = read_script(path)
            est = planner.estimate(script)
        except PlayoutError as exc:
            _fail(exc, f"{path.name}: ")
            if args.json:
                print(
                    json.dumps({"script": path.name, "ok": False, "error": exc.to_dict()}, ensure_ascii=False)
                )
            status = EXIT_REFUSED
            continue
        report = {
            "script": path.name,
            "title": script.display_title,
            "ok": est.error is None,
            **est.as_dict(),
        }
        if est.error is not None:
            status = EXIT_REFUSED
        if args.json:
            print(json.dumps(report, ensure_ascii=False), flush=True)
            continue
        mark = "ĐẠT" if est.error is None else "KHÔNG ĐẠT"
        print(f"{mark}  {path.name} — {script.display_title}")
        length = config.bulletin.length_s
        share = min(100, round(100 * (est.speech_s + est.layout.pauses_s) / length))
        print(
            f"      đọc khoảng {_human_duration(est.speech_s)} bằng {est.engine} ({est.voice}, "
            f"tốc độ {est.rate_pct:+d}%), {est.sentences} câu, {est.syllables} tiếng; "
            f"lời chiếm {share}% của {length:.0f} giây"
            + (", đọc hai lần (“xin nhắc lại”)" if est.repeated else "")
            + f"; nhạc nền cuối bài khoảng {max(0, est.layout.fill_s):.0f} giây"
        )
        if est.error is not None:
            print(f"      [{est.error.code}] {est.error.message}")
        for w in est.warnings:
            print(f"      ! {w}")
    return status


def cmd_normalize(args) -> int:
    from tts.normalize import to_spoken

    try:
        _station_words(_load(args))
    except PlayoutError as exc:
        # The shipped lexicon still reads: a broken schedule.yaml must not stop an operator checking text.
        _fail(exc, "cấu hình không dùng được, chỉ dùng từ điển có sẵn: ")
    if args.text:
        print(to_spoken(" ".join(args.text)))
        return EXIT_OK
    # One spoken line per input line, flushed as it goes, so it works as a filter in a pipe.
    for line in sys.stdin:
        print(to_spoken(line.rstrip("\n")).replace("\n", " "), flush=True)
    return EXIT_OK


def cmd_config(args) -> int:
    import yaml

    config = _load(args)
    data = config.model_dump(mode="json")
    print(f"# effective settings ({_config_path(args.config) or 'embedded defaults'})")
    print(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), end="")
    return EXIT_OK


def _render_all(config, scripts: list[Path]) -> list[tuple[Path, dict]]:
    """Render ahead of time with a progress bar (the daemon then finds them in the cache)."""
    from playout.intake import read_script
    from tts.render import Renderer

    renderer = Renderer(config)
    done = []
    try:
        for path in _progress(scripts, "Đang đọc"):
            try:
                done.append((path, renderer.render(read_script(path)).summary))
            except PlayoutError as exc:
                _fail(exc, f"{path.name}: ")
    finally:
        renderer.close()
    return done


def cmd_run(args) -> int:
    from playout.station import Station

    path = _config_path(args.config)
    config = _load(args)
    return Station(config, config_path=path).run()


def cmd_demo(args) -> int:
    """The station on embedded defaults, with a demo slot a minute after start."""
    import datetime as dt

    from playout.config import Window
    from playout.station import Station

    config = _load(args)
    folder = config.paths.bulletins / "approved"
    scripts = _expand([str(folder)]) if folder.is_dir() else []
    print(f"Trạm phát thanh phường — bản {__version__} (chế độ trình diễn)")
    print(f"Bản tin đã duyệt trong {folder}: {len(scripts)}")
    for path, s in _render_all(config, scripts):
        print(f"  {path.name}: {s['duration_s']:.0f} giây, {s['engine']}/{s['voice']}, {s['lufs']:.1f} LUFS")
    now = dt.datetime.now(config.tz).replace(microsecond=0)
    start = now + dt.timedelta(seconds=60)
    needed = config.relay.pre_roll_s + config.bulletin.length_s + config.relay.tail_s + 60
    end = start + dt.timedelta(seconds=max(600, needed))
    if end.date() != start.date():  # a demo started just before midnight: keep the window inside one day
        start = start.replace(hour=0, minute=1, second=0) + dt.timedelta(days=1)
        end = start + dt.timedelta(seconds=max(600, needed))
    # Named after its start: a slot airs once per window and day, so a second `make run` the same day gets
    # a window of its own and airs the demo again.
    demo = Window(
        name=f"trình diễn {start:%H:%M:%S}",
        start=start.timetz().replace(tzinfo=None),
        end=end.timetz().replace(tzinfo=None),
    )
    # An account and a token for this session only (kept in memory, never written): the web page and the
    # API need a role, and a newcomer should not have to edit accounts to look around.
    import secrets

    from playout.accounts import Account, ApiToken, hash_password, hash_token, new_token

    token = new_token()
    password = secrets.token_urlsafe(9)
    taken = {a.name for a in [*config.auth.accounts, *config.auth.tokens]}
    demo_name = next(n for n in ("demo", "trinh-dien", "demo-1", "demo-2") if n not in taken)
    auth = config.auth.model_copy(
        update={
            "accounts": [
                *config.auth.accounts,
                Account(name=demo_name, password_hash=hash_password(password), roles=["admin"]),
            ],
            "tokens": [
                *config.auth.tokens,
                ApiToken(name=f"{demo_name}-api", token_hash=hash_token(token), roles=["admin"]),
            ],
        }
    )
    config = config.model_copy(update={"windows": [*config.windows, demo], "auth": auth})
    site = f"http://{config.api.host}:{config.api.port}"
    print(f"Khung giờ trình diễn: {start:%H:%M:%S}–{end:%H:%M:%S} (một phút nữa bắt đầu phát)")
    print(f"Trang quản lý: {site}/  (Ctrl-C để dừng)")
    print(f"  đăng nhập: tài khoản {demo_name}, mật khẩu {password}  (chỉ trong phiên trình diễn này)")
    print("  tài khoản thật: playout account add TÊN --role admin")
    print(f"Nhật ký và tình trạng: {site}/api/health")
    print(f"Mã truy cập thử cho phiên này: {token}")
    print(
        f"  ví dụ: curl -H 'Authorization: Bearer {token}' http://{config.api.host}:{config.api.port}/api/plays"
    )
    print(f"Dữ liệu và nhật ký phát sóng: {config.paths.data}")
    return Station(config, config_path=None).run()


def _read_new_password() -> str | None:
    """A new password: asked twice at a terminal, else the first line of stdin (scripts, tests)."""
    import getpass

    if sys.stdin.isatty():
        first = getpass.getpass("Mật khẩu mới: ")
        if getpass.getpass("Nhập lại: ") != first:
            print("playout: hai lần nhập không khớp", file=sys.stderr)
            return None
        return first
    return sys.stdin.readline().rstrip("\n")


def cmd_passwd(args) -> int:
    """Print a password hash for schedule.yaml's auth.accounts (the password itself is never stored), and the
    lines to paste; ``playout account add`` writes them into the file instead."""
    from playout.accounts import hash_password
    from playout.config_edit import snippet

    password = _read_new_password()
    if password is None:
        return EXIT_USAGE
    try:
        digest = hash_password(password)
    except ValueError as exc:
        print(f"playout: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(digest)
    if args.name:
        print("thêm vào schedule.yaml (hoặc dùng: playout account add TÊN --role VAI_TRÒ):", file=sys.stderr)
        print(snippet(args.name, digest, args.role or ["operator"]), end="", file=sys.stderr)
    return EXIT_OK


def _account_name_ok(name: str) -> bool:
    """A station's or a centre's login or token name; says why not on stderr."""
    if re.fullmatch(r"[a-z0-9._-]{1,50}", name):
        return True
    print("playout: tên chỉ gồm 1–50 ký tự a-z, 0-9, dấu chấm, gạch dưới, gạch ngang", file=sys.stderr)
    return False


def cmd_account_add(args) -> int:
    """Create a web account: the password is asked for, its hash written into schedule.yaml's auth.accounts
    (the rest of the file, comments included, is kept).  A running station applies it within seconds."""
    from pydantic import ValidationError

    from playout.accounts import Account, hash_password
    from playout.config_edit import add_account

    path = _config_path(args.config) or Path("schedule.yaml")
    if not _account_name_ok(args.name):
        return EXIT_USAGE
    password = _read_new_password()
    if password is None:
        return EXIT_USAGE
    try:
        digest = hash_password(password)
        Account(name=args.name, password_hash=digest, roles=args.role)
        add_account(path, args.name, digest, args.role)
    except ValidationError as exc:
        print(f"playout: tài khoản không hợp lệ: {exc.errors()[0]['msg']}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:
        print(f"playout: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"playout: {exc.message}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"Đã thêm tài khoản “{args.name}” ({', '.join(args.role)}) vào {path}.")
    print("Trạm đang chạy sẽ áp dụng trong vài giây; đăng nhập tại trang quản lý của trạm.")
    return EXIT_OK


def cmd_token(args) -> int:
    """A new API token for a program: the token once (give it to the program), its hash for the config."""
    from playout.accounts import hash_token, new_token

    token = new_token()
    print(f"token (đưa cho chương trình, chỉ hiện một lần): {token}")
    print("thêm vào schedule.yaml:")
    entry = f"{{name: {args.name}, token_hash: '{hash_token(token)}', roles: [technician]}}"
    print(f"  auth:\n    tokens:\n      - {entry}")
    return EXIT_OK


def cmd_centre(args) -> int:
    """A province or district centre (issue 14): set-up, stations, approvers, publishing, serving."""
    from playout.fleet.centre import Centre, serve

    centre = Centre(args.dir)
    what = args.centre_command
    if what == "init":
        if args.broker_tls and not args.broker_host:
            print("playout: --broker-tls cần --broker-host (địa chỉ các trạm gọi tới MQTT)", file=sys.stderr)
            return EXIT_USAGE
        root = centre.init(
            broker_host=args.broker_host,
            broker_port=args.broker_port,
            broker_listen=args.broker_listen,
            broker_tls=args.broker_tls,
        )
        print(f"trung tâm đã tạo trong {args.dir}; gốc tin cậy (cài lên mỗi trạm): {root}")
        tls = centre.broker_tls()
        if tls is not None:
            print(f"MQTT qua TLS; chứng chỉ gốc của máy chủ MQTT (cài lên mỗi trạm): {tls['ca_file']}")
    elif what == "broker-tls":
        try:
            made, updated = centre.make_broker_tls(port=args.port)
        except ValueError as exc:
            print(f"playout: {exc}", file=sys.stderr)
            return EXIT_USAGE
        port = centre.settings()["broker"]["port"]
        print(f"đã tạo chứng chỉ TLS mới cho MQTT (cổng {port}), chứng chỉ gốc: {made.ca_file}")
        print(
            f"khởi động lại trung tâm (systemctl restart playout-centre), rồi cài lại broker-ca.pem và mục "
            f"broker trong fleet.yaml lên {len(updated)} trạm: {', '.join(updated) or '(chưa có trạm)'}"
        )
    elif what == "station":
        out = centre.add_station(args.station_id, centre_url=args.centre_url)
        print(f"cài các tệp trong {out} lên trạm {args.station_id} (fleet.yaml: dán vào schedule.yaml)")
    elif what == "approver":
        if args.revoke:
            centre.revoke_approver(args.name)
            print(f"đã thu hồi quyền duyệt của {args.name}: các trạm thôi phát tin người này đã duyệt")
        elif args.rotate:
            keyid = centre.rotate_approver(args.name)
            print(
                f"đã đổi khóa ký của {args.name} (khóa mới {keyid[:16]}…); các bản tin đã duyệt vẫn phát, "
                "khóa cũ không còn được các trạm chấp nhận từ lần cập nhật tới"
            )
        else:
            token = centre.add_approver(args.name)
            print(f"mã truy cập của người duyệt {args.name} (chỉ hiện một lần): {token}")
    elif what == "publish":
        import datetime as dt

        now = dt.datetime.now(dt.UTC).astimezone()
        meta = {
            "title": args.title,
            "wards": args.wards.split(","),
            "level": args.level,
            "air_from": args.air_from or now.isoformat(timespec="seconds"),
            "air_until": args.air_until or (now + dt.timedelta(days=7)).isoformat(timespec="seconds"),
        }
        target = centre.publish(args.approver, Path(args.script).read_bytes(), meta)
        print(target)
    elif what == "withdraw":
        centre.withdraw(args.target)
        print(f"đã rút {args.target}")
    elif what == "keys":
        from playout.fleet.tuf_repo import load_signer

        repo = centre.repository()
        if args.rotate:
            roles = [r.strip() for r in args.rotate.split(",") if r.strip()]
            root_signers = None
            if args.root_key:
                import getpass

                root_signers = []
                for path in args.root_key:
                    try:
                        try:
                            root_signers.append(load_signer(path))
                        except TypeError:  # a passphrase-locked copy on the offline media
                            password = getpass.getpass(f"Mật khẩu của khóa gốc {path}: ").encode()
                            root_signers.append(load_signer(path, password=password))
                    except (OSError, TypeError, ValueError) as exc:
                        print(f"playout: không đọc được khóa gốc {path}: {exc}", file=sys.stderr)
                        return EXIT_USAGE
            rotation = repo.rotate_online_keys(roles, root_signers=root_signers)
            print(f"đã tạo khóa mới cho: {', '.join(rotation.new_keys)}")
            print(f"khóa cũ đã chuyển vào {repo.keys_dir / 'retired'}")
            print(f"gốc tin cậy mới: phiên bản {rotation.root_version} ({rotation.root_path})")
            print(
                "các trạm tự chuyển sang khóa mới ở lần cập nhật kế tiếp, không cần cài lại fleet-root.json; "
                "từ đó chữ ký bằng khóa cũ bị từ chối"
            )
        else:
            status = repo.key_status()
            root = status["root"]
            print(f"gốc tin cậy phiên bản {root['version']}, hết hạn {root['expires']:%Y-%m-%d}")
            for role, info in status.items():
                for keyid in info["keyids"]:
                    where = "có trên máy" if keyid in info["held"] else "không có trên máy"
                    print(f"  {role:<9} {keyid[:16]}…  ({where})")
    elif what == "prune":
        if args.keep is not None and args.keep < 0:
            print("playout: --keep phải từ 0 trở lên", file=sys.stderr)
            return EXIT_USAGE
        pruned = centre.repository().prune(args.keep, dry_run=args.dry_run)
        if not pruned.count:
            print("không có tệp cũ nào cần xóa")
        else:
            for name in pruned.files if args.dry_run else ():
                print(f"  {name}")
            verb = "sẽ xóa" if args.dry_run else "đã xóa"
            print(
                f"{verb} {pruned.count} tệp cũ ({pruned.bytes} byte, {pruned.bytes / 1048576:.1f} MB); "
                "mọi phiên bản gốc tin cậy (root) và dữ liệu đang dùng được giữ nguyên"
            )
    elif what == "account":
        return _centre_account(centre, args)
    elif what == "token":
        token = centre.add_token(args.name, args.role)
        print(f"token (đưa cho chương trình, chỉ hiện một lần): {token}")
        print(f"đã ghi mã băm vào {centre.config_path}; trung tâm đang chạy áp dụng trong vài giây")
    elif what == "serve":
        serve(args.dir, host=args.host, port=args.port, run_broker=args.broker)
    return EXIT_OK


def _centre_account(centre, args) -> int:
    """A login on the centre's desk, or its removal; an approver also needs their signing key."""
    from pydantic import ValidationError

    if not _account_name_ok(args.name):
        return EXIT_USAGE
    if args.remove:
        if not centre.remove_account(args.name):
            print(f"playout: không có tài khoản {args.name}", file=sys.stderr)
            return EXIT_USAGE
        print(f"đã xóa tài khoản {args.name}; phiên đăng nhập của người này hết hiệu lực trong vài giây")
        return EXIT_OK
    if not args.role:
        print("playout: cần ít nhất một --role", file=sys.stderr)
        return EXIT_USAGE
    password = _read_new_password()
    if password is None:
        return EXIT_USAGE
    try:
        centre.add_account(args.name, password, args.role)
    except ValidationError as exc:
        print(f"playout: tài khoản không hợp lệ: {exc.errors()[0]['msg']}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:
        print(f"playout: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"đã thêm tài khoản “{args.name}” ({', '.join(args.role)}) vào {centre.config_path}")
    if {"approver", "admin"} & set(args.role) and args.name not in centre.repository().approvers():
        print(
            f"lưu ý: {args.name} chưa có khóa ký nên chưa duyệt được; "
            f"chạy: playout centre approver {centre.folder} {args.name}"
        )
    return EXIT_OK


def _relay_settings_anyway(args):
    """The relay to switch off, even when schedule.yaml is broken.

    ``relay-off`` runs after every stop (ExecStopPost): an operator's typo anywhere in the file must not
    leave the amplifier keyed.  Tried in order: the whole file; its ``relay`` section alone; the relay
    the station itself recorded when it claimed the pin (``relay.json`` in the data folder).  Never a
    guessed pin: driving the wrong GPIO could switch some other device.
    """
    from playout.config import RelaySettings, relay_record

    try:
        return _load(args).relay, None
    except ConfigError as exc:
        problem = exc
    path = _config_path(args.config)
    data = None
    try:
        import yaml

        data = yaml.safe_load(path.read_bytes().decode("utf-8-sig")) if path else None
    except (OSError, ValueError, yaml.YAMLError):
        data = None
    if isinstance(data, dict):
        try:
            # No relay section in a file that parses: the station runs on the default pin too.
            return RelaySettings.model_validate(data.get("relay") or {}), problem
        except ValueError:
            pass
    paths = data.get("paths") if isinstance(data, dict) else None
    data_dir = paths.get("data") if isinstance(paths, dict) and isinstance(paths.get("data"), str) else "var"
    base = path.resolve().parent if path else Path.cwd()
    recorded = relay_record(base / data_dir)
    if recorded is not None:
        return recorded, problem
    raise problem


def cmd_relay_off(args) -> int:
    from gpio import force_off

    try:
        settings, problem = _relay_settings_anyway(args)
    except ConfigError as exc:
        _fail(exc, "không biết rơ-le ở chân nào: ")
        return EXIT_USAGE
    if problem is not None:
        # Say it, but switch the relay off first: that is what this command is for.
        print(f"playout: [{problem.code}] {problem.message}", file=sys.stderr)
        print(
            f"playout: vẫn tắt rơ-le ở chân GPIO{settings.pin} theo phần relay còn đọc được", file=sys.stderr
        )
    try:
        print(force_off(settings))
    except Exception as exc:  # noqa: BLE001 - the last line of defence must say what failed
        print(f"playout: [RELAY_OFF_FAILED] Không tắt được rơ-le: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK


# -- entry point ----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="playout", description="Trạm phát thanh phường: Học số mỗi ngày 3 phút"
    )
    parser.add_argument("--version", action="version", version=f"playout {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="ghi nhật ký chi tiết ra stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="LỆNH")

    def with_config(p):
        p.add_argument("--config", metavar="FILE", help="tệp cấu hình (mặc định: ./schedule.yaml)")
        return p

    p = with_config(sub.add_parser("render", help="đọc kịch bản thành bản tin WAV đúng 3 phút"))
    p.add_argument("scripts", nargs="+", metavar="SCRIPT")
    p.add_argument(
        "-o", "--output", metavar="OUT", help="tệp .wav (một kịch bản) hoặc thư mục (nhiều kịch bản)"
    )
    p.add_argument("--engine", help="chỉ dùng bộ đọc này (espeak, edge, piper)")
    p.set_defaults(func=cmd_render)

    p = with_config(sub.add_parser("check", help="kiểm tra kịch bản và ước lượng thời lượng, không đọc"))
    p.add_argument("scripts", nargs="+", metavar="SCRIPT")
    p.add_argument("--engine", help="ước lượng cho bộ đọc này")
    p.add_argument("--json", action="store_true", help="in kết quả dạng JSON")
    p.set_defaults(func=cmd_check)

    p = with_config(
        sub.add_parser("normalize", help="in cách đọc của văn bản (không có TEXT: đọc từng dòng từ stdin)")
    )
    p.add_argument("text", nargs="*", metavar="TEXT")
    p.set_defaults(func=cmd_normalize)

    p = with_config(sub.add_parser("config", help="in cấu hình đang có hiệu lực"))
    p.set_defaults(func=cmd_config)

    p = with_config(sub.add_parser("run", help="chạy trạm phát thanh (dịch vụ systemd gọi lệnh này)"))
    p.set_defaults(func=cmd_run)

    p = with_config(sub.add_parser("demo", help="chạy trạm với một khung giờ trình diễn sau một phút"))
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("passwd", help="tạo mã băm mật khẩu cho tài khoản trong schedule.yaml")
    p.add_argument("--name", help="in sẵn các dòng cho schedule.yaml với tên tài khoản này")
    p.add_argument("--role", action="append", choices=ROLE_NAMES, help="vai trò (có thể lặp lại)")
    p.set_defaults(func=cmd_passwd)

    account = sub.add_parser("account", help="quản lý tài khoản đăng nhập trang web")
    account_sub = account.add_subparsers(dest="account_command", required=True, metavar="LỆNH")
    p = with_config(account_sub.add_parser("add", help="thêm tài khoản vào schedule.yaml (hỏi mật khẩu)"))
    p.add_argument("name", metavar="TÊN", help="tên đăng nhập (chữ thường, số, . _ -)")
    p.add_argument(
        "--role", action="append", required=True, choices=ROLE_NAMES, help="vai trò (có thể lặp lại)"
    )
    p.set_defaults(func=cmd_account_add)

    p = sub.add_parser("token", help="tạo mã truy cập API cho một chương trình")
    p.add_argument("name", help="tên chương trình (chữ thường, số, . _ -)")
    p.set_defaults(func=cmd_token)

    centre = sub.add_parser("centre", help="trung tâm tỉnh/huyện cấp tin cho nhiều trạm (TUF, MQTT)")
    centre_sub = centre.add_subparsers(dest="centre_command", required=True, metavar="LỆNH")
    p = centre_sub.add_parser("init", help="tạo trung tâm: khóa, gốc tin cậy, cấu hình Mosquitto")
    p.add_argument("dir", metavar="THƯ_MỤC")
    p.add_argument("--broker-host", help="địa chỉ Mosquitto của trung tâm (bỏ trống: không dùng MQTT)")
    p.add_argument("--broker-port", type=int, help="cổng MQTT (mặc định 1883; 8883 với --broker-tls)")
    p.add_argument(
        "--broker-tls",
        action="store_true",
        help="MQTT qua TLS với chứng chỉ riêng của trung tâm: mật khẩu các trạm không đi dạng rõ",
    )
    p.add_argument(
        "--broker-listen",
        metavar="ĐỊA_CHỈ",
        help="địa chỉ Mosquitto lắng nghe trên máy này, khi khác tên các trạm gọi (vd. 0.0.0.0 sau NAT)",
    )
    p = centre_sub.add_parser(
        "broker-tls",
        help="bật TLS cho MQTT, hoặc tạo lại chứng chỉ (khóa bị lộ): cài lại broker-ca.pem lên các trạm",
    )
    p.add_argument("dir", metavar="THƯ_MỤC")
    p.add_argument("--port", type=int, help="cổng MQTT mới (thường 8883 khi bật TLS)")
    p = centre_sub.add_parser("station", help="thêm một trạm: mã truy cập, mật khẩu MQTT, gốc tin cậy")
    p.add_argument("dir", metavar="THƯ_MỤC")
    p.add_argument("station_id", metavar="MÃ_TRẠM")
    p.add_argument("--centre-url", required=True, help="địa chỉ trung tâm mà trạm sẽ gọi")
    p = centre_sub.add_parser("approver", help="thêm (hoặc thu hồi) một người duyệt tin")
    p.add_argument("dir", metavar="THƯ_MỤC")
    p.add_argument("name", metavar="TÊN")
    p.add_argument("--revoke", action="store_true", help="thu hồi: mọi tin người này duyệt thôi phát")
    p.add_argument(
        "--rotate", action="store_true", help="đổi khóa ký mới (khóa cũ bị lộ): tin đã duyệt vẫn phát"
    )
    p = centre_sub.add_parser("publish", help="ký và đăng một bản tin cho các trạm")
    p.add_argument("dir", metavar="THƯ_MỤC")
    p.add_argument("script", metavar="KỊCH_BẢN")
    p.add_argument("--approver", required=True)
    p.add_argument("--title", required=True)
    p.add_argument("--wards", required=True, help="mã các trạm, cách nhau bằng dấu phẩy")
    p.add_argument("--level", choices=("thuong", "uu_tien", "khan_cap"), default="thuong")
    p.add_argument("--air-from", help="ISO 8601 có múi giờ (mặc định: bây giờ)")
    p.add_argument("--air-until", help="ISO 8601 có múi giờ (mặc định: bảy ngày nữa)")
    p = centre_sub.add_parser("withdraw", help="rút một bản tin đã đăng")
    p.add_argument("dir", metavar="THƯ_MỤC")
    p.add_argument("target", metavar="ĐƯỜNG_DẪN")
    p = centre_sub.add_parser("keys", help="xem các khóa ký, hoặc đổi khóa trực tuyến (--rotate)")
    p.add_argument("dir", metavar="THƯ_MỤC")
    p.add_argument(
        "--rotate",
        metavar="VAI_TRÒ",
        help="tạo khóa mới cho các vai trò này, cách nhau bằng dấu phẩy: targets,snapshot,timestamp",
    )
    p.add_argument(
        "--root-key",
        action="append",
        metavar="TỆP",
        help="tệp khóa gốc (root) khi đã cất khỏi máy, để ký gốc tin cậy mới (lặp lại cho mỗi khóa)",
    )
    p = centre_sub.add_parser("prune", help="xóa siêu dữ liệu và tệp bản tin cũ không còn dùng")
    p.add_argument("dir", metavar="THƯ_MỤC")
    p.add_argument(
        "--keep",
        type=int,
        metavar="N",
        help="giữ thêm N phiên bản trước cho trạm đang cập nhật dở (mặc định 5)",
    )
    p.add_argument("--dry-run", action="store_true", help="chỉ liệt kê những gì sẽ xóa")
    p = centre_sub.add_parser("account", help="thêm (hỏi mật khẩu), đổi hoặc xóa tài khoản trang trung tâm")
    p.add_argument("dir", metavar="THƯ_MỤC")
    p.add_argument("name", metavar="TÊN")
    p.add_argument("--role", action="append", choices=ROLE_NAMES, help="vai trò (có thể lặp lại)")
    p.add_argument("--remove", action="store_true", help="xóa tài khoản")
    p = centre_sub.add_parser(
        "token", help="mã truy cập API cho một chương trình (đọc báo cáo, danh sách trạm)"
    )
    p.add_argument("dir", metavar="THƯ_MỤC")
    p.add_argument("name", metavar="TÊN")
    p.add_argument(
        "--role", action="append", required=True, choices=ROLE_NAMES, help="vai trò (có thể lặp lại)"
    )
    p = centre_sub.add_parser("serve", help="chạy trung tâm (HTTP cho các trạm, theo dõi MQTT)")
    p.add_argument("dir", metavar="THƯ_MỤC")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8090)
    p.add_argument("--broker", action="store_true", help="tự chạy Mosquitto của trung tâm")
    centre.set_defaults(func=cmd_centre)

    p = with_config(sub.add_parser("relay-off", help="tắt rơ-le loa (systemd gọi khi dịch vụ dừng)"))
    p.set_defaults(func=cmd_relay_off)
    return parser


def setup_logging(level: int, stream=None) -> logging.Handler:
    """One handler on the root logger, to stderr (the journal, under systemd), made safe by
    ``playout.logsafe``: a client cannot forge a line (control characters in logged values are escaped)
    nor fill the SD card (a record repeated from one place is collapsed into a count).  Calling it again
    replaces the handler it installed before."""
    from playout import logsafe

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "playout_handler", False)]:
        root.removeHandler(old)
        old.close()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.playout_handler = True  # type: ignore[attr-defined]
    logsafe.install([handler])
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The daemon logs what it does (the journal keeps it); one-shot commands only say what went wrong.
    daemon = args.command in ("run", "demo") or (args.command == "centre" and args.centre_command == "serve")
    setup_logging(logging.INFO if args.verbose or daemon else logging.WARNING)
    try:
        return args.func(args)
    except ConfigError as exc:
        _fail(exc)
        return EXIT_USAGE
    except PlayoutError as exc:
        _fail(exc)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
