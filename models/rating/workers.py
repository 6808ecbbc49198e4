"""Grid-search worker processes that never outlive the process that started them.

joblib's loky workers are separate processes; when `songrec train` is killed with -9 it
cannot stop them, and they would go on fitting (and holding memory) for minutes. Each
worker asks the Linux kernel to send it SIGKILL when its parent dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import os
import signal
from contextlib import AbstractContextManager

from joblib import parallel_config

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """In a worker started by process `parent`: be killed when it goes (Linux only)."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    # The parent may have died while this worker was starting (importing takes seconds),
    # before the request above was made: then nobody would send the signal.
    if os.getppid() != parent:
        os._exit(1)


def workers_die_with_parent() -> AbstractContextManager:
    """joblib configuration under which every loky worker runs `die_with_parent` first."""
    return parallel_config(backend="loky", initializer=die_with_parent, initargs=(os.getpid(),))
