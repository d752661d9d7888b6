"""Word files are read in a child process: ``python -m playout.wordfile NAME [MEMORY_MB]`` (file on stdin).

The child limits itself (address space ``MEMORY_MB``, nice), reads the document with
``playout.intake._read_docx_here`` and prints one JSON object: the text, warnings and core properties,
or the refusal (code, Vietnamese message, detail).  The parent gives it ``TIMEOUT_S``; a child that runs
out of memory, crashes or hangs becomes a refusal of that file with a clear message, and the station
(or the upload request) carries on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from playout.errors import ScriptRejected
from playout.notify import child_environment

logger = logging.getLogger(__name__)

#: A 1 MB .docx whose parts are capped at 2 MB of XML parses in well under 100 MB.
MEMORY_MB = 512
TIMEOUT_S = 30.0
FAILED = (
    "Không đọc được tệp Word {name}: tệp quá phức tạp hoặc bị hỏng. "
    "Hãy mở bằng Word và lưu lại dạng .docx, hoặc gửi tệp .txt."
)


def read_in_child(data: bytes, name: str) -> tuple[str, list[str], dict[str, str]]:
    root = str(Path(__file__).resolve().parent.parent)
    env = child_environment(import_from=root)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "playout.wordfile", name, str(MEMORY_MB)],
            input=data,
            capture_output=True,
            timeout=TIMEOUT_S,
            env=env,
            cwd=root,
            check=False,
        )
    except subprocess.TimeoutExpired:
        logger.error("word file %s: reading took longer than %.0fs; refused", name, TIMEOUT_S)
        raise ScriptRejected(
            FAILED.format(name=name), code="DOCX_INVALID", detail=f"timeout {TIMEOUT_S:.0f}s", filename=name
        ) from None
    for line in proc.stderr.decode("utf-8", "replace").splitlines()[-20:]:
        logger.info("word file %s: %s", name, line)
    try:
        answer = json.loads(proc.stdout.decode("utf-8"))
    except ValueError:
        why = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit status {proc.returncode}"
        logger.error("word file %s: the reader ended (%s) without an answer; refused", name, why)
        raise ScriptRejected(
            FAILED.format(name=name), code="DOCX_INVALID", detail=why, filename=name
        ) from None
    if not answer.get("ok"):
        raise ScriptRejected(
            answer["message"],
            code=answer["code"],
            detail=answer.get("detail", ""),
            **answer.get("context", {}),
        )
    return answer["text"], answer["warnings"], answer["core"]


def main(argv: list[str]) -> int:
    import resource

    with contextlib.suppress(OSError):
        os.nice(10)
    limit = (int(argv[1]) if len(argv) > 1 else MEMORY_MB) * 2**20
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    name = argv[0] if argv else "script.docx"
    data = sys.stdin.buffer.read()
    from playout.intake import _read_docx_here

    try:
        text, warnings, core = _read_docx_here(data, name)
        answer = {"ok": True, "text": text, "warnings": warnings, "core": core}
    except ScriptRejected as exc:
        answer = {"ok": False, "code": exc.code, "message": exc.message, "detail": exc.detail}
        answer["context"] = {k: v for k, v in exc.context.items() if isinstance(v, str | int | float | bool)}
    except MemoryError:
        answer = {
            "ok": False,
            "code": "DOCX_INVALID",
            "message": FAILED.format(name=name),
            "detail": "MemoryError",
        }
    sys.stdout.write(json.dumps(answer, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
