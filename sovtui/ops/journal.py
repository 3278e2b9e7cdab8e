"""Provides the journal of runs in progress: one JSON file per run in the XDG state dir, so a crashed session can resume.

A run's file is written when it starts and rewritten (atomically) as its items end; it is removed when the
run ends. A file whose process is gone is an unfinished run: sovtui offers to resume it (the plan is made
again from the live cluster, so what already happened is not redone) or to abandon it.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import xdg_dir
from .plan import SUCCESS, Event, Plan

log = logging.getLogger(__name__)

#: journal files larger than this are not read (a run of thousands of items stays far below it)
MAX_FILE_BYTES = 16 * 1024 * 1024


def runs_dir() -> Path:
    return xdg_dir("state") / "runs"


def local_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in a container
        return str(os.getuid())


@dataclass(frozen=True)
class Unfinished:
    """A run whose process ended before the run did."""

    id: str
    plan: Plan
    states: dict[str, str]
    details: dict[str, str]
    started_at: float
    updated_at: float
    pid: int
    user: str
    path: Path

    def describe(self) -> str:
        done = sum(1 for s in self.plan.steps if s.acts and self.states.get(s.key) in SUCCESS)
        acting = sum(1 for s in self.plan.steps if s.acts)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.started_at))
        return (
            f"{self.plan.action} {', '.join(self.plan.hosts)} on site {self.plan.site} by {self.user}, started {when}: "
            f"{done} of {acting} items done when it stopped"
        )


class JournalEntry:
    """The journal file of one run in progress."""

    def __init__(self, path: Path, doc: dict[str, Any]) -> None:
        self.path = path
        self.doc = doc
        self.id: str = doc["id"]

    def record(self, event: Event) -> None:
        if not event.step:
            return
        states, details = self.doc["states"], self.doc["details"]
        if states.get(event.step) == event.state and details.get(event.step) == event.detail:
            return
        states[event.step] = event.state
        details[event.step] = event.detail
        self.doc["updated_at"] = event.at
        self._write()

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(self.doc), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("journal %s: %s", self.path, exc)

    def finish(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


class Journal:
    """The runs directory."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or runs_dir()

    def begin(self, plan: Plan, *, resumed_from: str = "", clock: Any = time.time) -> JournalEntry:
        self.directory.mkdir(parents=True, exist_ok=True)
        run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime(clock())) + "-" + uuid.uuid4().hex[:6]
        doc = {
            "id": run_id,
            "pid": os.getpid(),
            "machine": socket.gethostname(),
            "user": local_user(),
            "started_at": clock(),
            "updated_at": clock(),
            "resumed_from": resumed_from,
            "plan": plan.to_json(),
            "states": {},
            "details": {},
        }
        entry = JournalEntry(self.directory / f"{run_id}.json", doc)
        entry._write()
        return entry

    def unfinished(self) -> list[Unfinished]:
        """Runs whose process is gone, oldest first; a run still going in another process is not listed."""
        out = []
        try:
            paths = sorted(self.directory.glob("*.json"))
        except OSError:
            return []
        for path in paths:
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    continue
                doc = json.loads(path.read_text(encoding="utf-8"))
                if doc.get("machine") == socket.gethostname() and _alive(int(doc.get("pid", 0))):
                    continue
                out.append(
                    Unfinished(
                        doc["id"],
                        Plan.from_json(doc["plan"]),
                        dict(doc.get("states") or {}),
                        dict(doc.get("details") or {}),
                        float(doc.get("started_at") or 0),
                        float(doc.get("updated_at") or 0),
                        int(doc.get("pid") or 0),
                        str(doc.get("user") or ""),
                        path,
                    )
                )
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("journal %s unreadable: %s", path, exc)
        return out

    def get(self, run_id: str) -> Unfinished | None:
        return next((u for u in self.unfinished() if u.id == run_id), None)

    def remove(self, run: Unfinished) -> None:
        try:
            run.path.unlink()
        except FileNotFoundError:
            pass


def _alive(pid: int) -> bool:
    if pid <= 0 or pid == os.getpid():
        return pid == os.getpid()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped) is not running the run
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True
