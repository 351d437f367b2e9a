"""One writer per run folder: a lock file naming the process that writes it.

Two trainings writing one folder interleave history.csv and the checkpoints into a run that neither of them made.
`run_lock` takes `<run>/.lock` with O_EXCL; a second writer is refused with a message naming the first. A lock left by
a process that no longer exists (killed, machine restarted) is taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path

LOCK_NAME = ".lock"


class RunLockedError(RuntimeError):
    """Another live process is writing this run folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, it is just someone else's
        return True
    return True


def _holder(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike, purpose: str = "train"):
    """Hold the run folder's lock for the duration of the block."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    me = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": purpose}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = _holder(path)
            same_host = holder is not None and holder.get("host") == me["host"]
            if holder is not None and (not same_host or _alive(int(holder.get("pid", -1)))):
                raise RunLockedError(
                    f"{run_dir} is being written by process {holder.get('pid')} on {holder.get('host')} "
                    f"({holder.get('purpose')}); wait for it to finish, stop it, or choose another run folder"
                ) from None
            path.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    else:
        raise RunLockedError(f"{run_dir}: could not take the lock {path}")
    try:
        yield
    finally:
        if _holder(path) == me:
            path.unlink(missing_ok=True)
