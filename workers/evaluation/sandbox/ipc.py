"""SysV IPC objects (shared memory, message queues, semaphores) a fallback run leaves in the host's IPC namespace.

Under bubblewrap the sandbox has its own IPC namespace, which dies with it. The fallback shares the host's: a
segment created by one candidate would survive the run and could be read by the next on the same uid. The seccomp
filter refuses every SysV call; this cleanup is the second line for hosts without a filter: after each fallback
run, every object owned or created by the run's uid that did not exist before the run is removed (IPC_RMID).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging

log = logging.getLogger("qmind.sandbox")
IPC_RMID = 0
# /proc/sysvipc/<kind>: column of the id, the owner uid and the creator uid.
_COLUMNS = {"shm": (1, 7, 9), "msg": (1, 7, 9), "sem": (1, 4, 6)}


def objects(uid: int) -> set[tuple[str, int]]:
    """(kind, id) of every SysV object whose owner or creator is ``uid``."""
    found = set()
    for kind, (id_col, uid_col, cuid_col) in _COLUMNS.items():
        try:
            with open(f"/proc/sysvipc/{kind}", encoding="ascii") as fh:
                lines = fh.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            with contextlib.suppress(IndexError, ValueError):
                if uid in (int(cols[uid_col]), int(cols[cuid_col])):
                    found.add((kind, int(cols[id_col])))
    return found


def remove_new(uid: int, before: set[tuple[str, int]]) -> int:
    """Remove the objects of ``uid`` that are not in ``before``; returns how many were removed."""
    libc = ctypes.CDLL(None, use_errno=True)
    removed = 0
    for kind, ident in sorted(objects(uid) - before):
        if kind == "shm":
            ok = libc.shmctl(ident, IPC_RMID, None) == 0
        elif kind == "msg":
            ok = libc.msgctl(ident, IPC_RMID, None) == 0
        else:
            ok = libc.semctl(ident, 0, IPC_RMID) == 0
        if ok:
            removed += 1
        else:
            log.error("sandbox: could not remove SysV %s %d of uid %d (errno %d)", kind, ident, uid,
                      ctypes.get_errno())
    if removed:
        log.warning("sandbox: removed %d SysV IPC object(s) a candidate of uid %d left behind", removed, uid)
    return removed
