"""The ``playout`` command.

Operators read its messages (Vietnamese); programs read its JSON on stdout and the stable error code in
square brackets on stderr.  Exit status: 0 done, 1 a script or render was refused, 2 bad usage or config.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from playout import __version__
from playout.errors import ConfigError, PlayoutError

logger = logging.getLogger("playout")

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


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


def _fail(exc: PlayoutError, prefix: str = "") -> None:
    print(f"playout: {prefix}[{exc.code}] {exc.message}", file=sys.stderr)


def _progress(items: Sequence, desc: str):
    from tqdm import tqdm

    # Several files: show progress on stderr (stdout carries JSON).  One file: no bar.
    if len(items) < 2:
        return items
    return tqdm(items, desc=desc, unit="bản tin", file=sys.stderr, mininterval=0.2, ascii=True)


def _expand(paths: Sequence[str]) -> list[Path]:
    from playout.intake import SCRIPT_SUFFIXES

    def is_script(f: Path) -> bool:
        # Folders hold notes for people too (README.md) and editors' hidden temporaries (~$x.docx).
        return (
            f.is_file()
            and f.suffix.lower() in SCRIPT_SUFFIXES
            and not f.name.startswith((".", "~"))
            and f.stem.upper() != "README"
        )

    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if is_script(f)))
        else:
            out.append(p)
    return out


# -- commands -------------------------------------------------------------------------------------------


def cmd_render(args) -> int:
    from playout.atomic import atomic_writer
    from playout.intake import read_script
    from tts.render import Renderer

    config = _load(args)
    scripts = _expand(args.scripts)
    if not scripts:
        print("playout: không có kịch bản nào để đọc", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.output) if args.output else None
    many = len(scripts) > 1
    if many and out is not None and out.suffix.lower() == ".wav":
        print("playout: khi đọc nhiều kịch bản, -o phải là một thư mục", file=sys.stderr)
        return EXIT_USAGE
    renderer = Renderer(config, engines=[args.engine] if args.engine else None)
    status = EXIT_OK
    try:
        for path in _progress(scripts, "Đang đọc"):
            try:
                result = renderer.render(read_script(path))
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
        renderer.close()
    return status


def _human_duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} phút {s:02d} giây" if m else f"{s} giây"


def cmd_check(args) -> int:
    from playout.intake import read_script
    from tts.render import Renderer

    config = _load(args)
    renderer = Renderer(config, engines=[args.engine] if args.engine else None)
    status = EXIT_OK
    for path in _expand(args.scripts):
        try:
            script = read_script(path)
            est = renderer.estimate(script)
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
        print(
            f"      đọc khoảng {_human_duration(est.speech_s)} bằng {est.engine} ({est.voice}, "
            f"tốc độ {est.rate_pct:+d}%), {est.sentences} câu, {est.syllables} tiếng; "
            f"nhạc nền cuối bài khoảng {max(0, est.layout.fill_s):.0f} giây"
        )
        if est.error is not None:
            print(f"      [{est.error.code}] {est.error.message}")
        for w in est.warnings:
            print(f"      ! {w}")
    return status


def cmd_normalize(args) -> int:
    from tts.normalize import to_spoken

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


def cmd_demo(args) -> int:
    """Render every script under the bulletins folder and say where the audio went."""
    from playout.atomic import atomic_writer
    from playout.intake import read_script
    from tts.render import Renderer

    config = _load(args)
    folder = config.paths.bulletins
    scripts = _expand([str(d) for d in (folder / "approved", folder / "inbox") if d.is_dir()])
    print(f"Trạm phát thanh phường — bản {__version__}")
    print(f"Kịch bản trong {folder}: {len(scripts)}")
    if not scripts:
        print(f"Hãy chép kịch bản (.txt, .md, .docx) vào {folder / 'approved'} rồi chạy lại.")
        return EXIT_OK
    out_dir = config.paths.data / "demo"
    renderer = Renderer(config)
    done = []
    try:
        for path in _progress(scripts, "Đang đọc"):
            try:
                result = renderer.render(read_script(path))
            except PlayoutError as exc:
                _fail(exc, f"{path.name}: ")
                continue
            target = out_dir / f"{path.stem}.wav"
            with result.path.open("rb") as src, atomic_writer(target) as dst:
                shutil.copyfileobj(src, dst)
            done.append((path, target, result.summary))
    finally:
        renderer.close()
    print()
    for path, target, s in done:
        print(
            f"  {target}  ({s['duration_s']:.0f} giây, {s['engine']}/{s['voice']}, "
            f"{s['lufs']:.1f} LUFS)  ← {path.name}"
        )
    print(f"\nĐã đọc {len(done)}/{len(scripts)} bản tin. Âm thanh nằm trong {out_dir}")
    print("Nghe thử: aplay " + str(done[0][1]) if done else "")
    return EXIT_OK if len(done) == len(scripts) else EXIT_REFUSED


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

    p = sub.add_parser("normalize", help="in cách đọc của văn bản (không có TEXT: đọc từng dòng từ stdin)")
    p.add_argument("text", nargs="*", metavar="TEXT")
    p.set_defaults(func=cmd_normalize)

    p = with_config(sub.add_parser("config", help="in cấu hình đang có hiệu lực"))
    p.set_defaults(func=cmd_config)

    p = with_config(
        sub.add_parser("demo", help="đọc mọi kịch bản trong thư mục bulletins/ và cho biết tệp âm thanh")
    )
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
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
