"""Run one command and print its wall time and peak RSS as JSON: `python -S bench/measure.py CMD...`.

Why a separate launcher: Linux carries a process's RSS high-water mark across exec(), so a command
forked straight from the benchmark (which has loaded numpy and rendered bulletins) would report the
benchmark's own memory.  This launcher is a bare interpreter; the command is forked from it.
"""

import json
import os
import sys
import time

started = time.perf_counter()
pid = os.fork()
if pid == 0:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
print(
    json.dumps(
        {
            "wall_s": time.perf_counter() - started,
            "max_rss_mib": usage.ru_maxrss / 1024,
            "exit": os.waitstatus_to_exitcode(status),
        }
    )
)
