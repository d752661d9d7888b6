"""The as-run outbox: a station's playback rows sent to its centre, each exactly once, after any outage.

The station's as-run log (SQLite) is the outbox: nothing is copied aside, so nothing can be lost between
a copy and a send.  The outbox only remembers the highest row id the centre has acknowledged
(``<data>/fleet/outbox.json``, written atomically).  Each send posts the settled rows after it, in id
order, as ``{"station": ID, "rows": [...]}``; the centre stores them keyed by (station, row id) and
ignores a row it already has, then answers ``{"acked": N}``, the highest id it now holds from this batch.
A send that fails, or whose answer is lost, is simply repeated: the centre's key makes that harmless, so
every row arrives once however the link behaves ("at least once" on the wire, "exactly once" in the
store).  A row still ``playing`` stops the batch: its outcome is not known yet.

    outbox = AsRunOutbox(log, data / "fleet", "dong-hai", "https://centre.example/api/fleet/asrun", token)
    outbox.send_pending()   # -> rows sent now; never raises for a network fault (state says why)
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from playout.atomic import atomic_write_text

logger = logging.getLogger(__name__)

#: Rows a send carries at most: a station back from a week offline sends its backlog in a few posts.
BATCH_ROWS = 200
#: A send that hangs on a flaky link is given up after this and tried again later.
SEND_TIMEOUT_S = 15.0


class AsRunOutbox:
    """Sends the as-run log's settled rows to the centre, in order, each acknowledged once."""

    def __init__(
        self,
        log: Any,
        state_dir: Path,
        station_id: str,
        url: str,
        token: str | None,
        *,
        timeout_s: float = SEND_TIMEOUT_S,
    ):
        self.log = log
        self.state_path = Path(state_dir) / "outbox.json"
        self.station_id = station_id
        self.url = url
        self.token = token
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self.acked = self._load()
        #: The last attempt: ``{"at": epoch, "ok": bool, "error": str | None, "sent": n}``.
        self.state: dict[str, Any] = {"at": None, "ok": None, "error": None, "sent": 0}

    def _load(self) -> int:
        try:
            return int(json.loads(self.state_path.read_text("utf-8"))["acked"])
        except FileNotFoundError:
            return 0
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # A damaged state file costs only a resend: the centre ignores rows it already has.
            logger.warning("as-run outbox state unreadable (%s): sending from the first row again", exc)
            return 0

    def _save(self, acked: int) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.state_path, json.dumps({"acked": acked, "station": self.station_id}))

    def backlog(self) -> int:
        """Settled rows not yet acknowledged (up to one batch's worth counted)."""
        return len(self.log.settled_after(self.acked, BATCH_ROWS))

    def _post(self, rows: list[dict]) -> int:
        body = json.dumps({"station": self.station_id, "rows": rows}, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 - the centre's URL
            answer = json.loads(response.read(65536).decode("utf-8"))
        acked = int(answer["acked"])
        if acked < rows[0]["id"] - 1 or acked > rows[-1]["id"]:
            raise ValueError(
                f"centre acknowledged {acked}, outside the batch {rows[0]['id']}..{rows[-1]['id']}"
            )
        return acked

    def send_pending(self, *, max_batches: int = 50) -> int:
        """Send every settled row after the last acknowledged one; the number the centre acknowledged.

        Never raises for the network or the centre: the failure is in ``state`` and logged, and the rows
        wait for the next call.
        """
        sent = 0
        batch = BATCH_ROWS
        with self._lock:
            for _ in range(max_batches):
                rows = self.log.settled_after(self.acked, batch)
                if not rows:
                    break
                try:
                    acked = self._post(rows)
                except urllib.error.HTTPError as exc:
                    if exc.code == 413 and batch > 1:
                        # A centre (or a proxy in front of it) with a smaller body cap: smaller posts, or
                        # the same batch would be refused for ever and the backlog never arrive.
                        batch = max(1, batch // 4)
                        logger.info(
                            "as-run outbox: the centre refused %d rows as too large; %d a post",
                            len(rows),
                            batch,
                        )
                        continue
                    self.state = {"at": time.time(), "ok": False, "error": str(exc)[:300], "sent": sent}
                    logger.info("as-run outbox: %d row(s) wait for the centre (%s)", len(rows), exc)
                    return sent
                except (OSError, urllib.error.URLError, ValueError, KeyError, TypeError) as exc:
                    self.state = {"at": time.time(), "ok": False, "error": str(exc)[:300], "sent": sent}
                    logger.info("as-run outbox: %d row(s) wait for the centre (%s)", len(rows), exc)
                    return sent
                sent += sum(1 for r in rows if self.acked < r["id"] <= acked)
                if acked <= self.acked:
                    break  # the centre took nothing new: do not spin
                self.acked = acked
                self._save(acked)
            self.state = {"at": time.time(), "ok": True, "error": None, "sent": sent}
        if sent:
            logger.info("as-run outbox: %d row(s) acknowledged by the centre, up to #%d", sent, self.acked)
        return sent
