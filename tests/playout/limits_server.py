"""A station-shaped API server in a process of its own, for counting its file descriptors from outside.

    python -m tests.playout.limits_server TOKEN HEADER_TIMEOUT_S

Prints one JSON line (port, fd budget) on stdout once it listens; logs through the daemon's own logging
setup to stderr.  Routes: /api/ping (technician), /api/stats (connection counters), /api/onair (opens
``reserve`` files at once, as the on-air path needs a WAV, the database and the audio device).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import threading
import time
from typing import Annotated

from fastapi import Depends, FastAPI

from playout.auth import Authenticator, AuthSettings, Principal, hash_token, require
from playout.cli import setup_logging
from playout.limits import ConnectionLimits, fd_budget, make_server


def main() -> None:
    token, header_timeout = sys.argv[1], float(sys.argv[2])
    setup_logging(logging.INFO)
    budget = fd_budget(200)
    app = FastAPI()
    settings = AuthSettings(
        tokens=[{"name": "tests", "token_hash": hash_token(token), "roles": ["technician"]}]
    )
    app.state.auth = Authenticator(settings, b"k" * 32)
    folder = tempfile.mkdtemp(prefix="onair-")

    @app.get("/api/ping")
    def ping(who: Annotated[Principal, Depends(require("log"))]) -> dict:
        return {"ok": True}

    @app.get("/api/stats")
    def stats(who: Annotated[Principal, Depends(require("log"))]) -> dict:
        return {**server.stats(), "fds": len(os.listdir("/proc/self/fd"))}

    @app.get("/api/onair")
    def onair(who: Annotated[Principal, Depends(require("log"))]) -> dict:
        files = []
        try:
            for i in range(budget.reserve):
                files.append(open(os.path.join(folder, f"{i}.wav"), "wb"))  # noqa: SIM115
        finally:
            for fh in files:
                fh.close()
        return {"opened": len(files)}

    limits = ConnectionLimits.within(budget, header_timeout_s=header_timeout)
    server = make_server(app, "127.0.0.1", 0, limits=limits)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    print(json.dumps({"port": port, "budget": budget.as_dict()}), flush=True)
    thread.join()


if __name__ == "__main__":
    main()
