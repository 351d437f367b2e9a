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
import uuid
from pathlib import Path

LOCK_NAME = ".lock"
# A process that holds a lock passes its token to the processes it starts (a report's notebook kernels, which train
# into the same folder): the lock belongs to the whole process tree, not to one process.
TOKEN_ENV = "CAPTCHA_NB_RUN_LOCK"


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
    inherited = os.environ.get(TOKEN_ENV)
    holder = _holder(path)
    if inherited and holder is not None and holder.get("token") == inherited:
        yield  # a parent process of ours holds this lock for us
        return
    me = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": purpose, "token": uuid.uuid4().hex}
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
    os.environ[TOKEN_ENV] = me["token"]
    try:
        yield
    finally:
        if inherited is None:
            os.environ.pop(TOKEN_ENV, None)
        else:
            os.environ[TOKEN_ENV] = inherited
        if _holder(path) == me:
            path.unlink(missing_ok=True)
