"""Helper processes: how many cores there are, and a forked helper that dies with its parent.

The site build renders in forked workers (:mod:`policyfeed.site.parallel`) and delivery into the
outbox composes ahead in one (:mod:`policyfeed.delivery.ahead`). Both fork, so a helper starts
in milliseconds with what its parent had loaded, and both must never outlive the parent: a
helper left running after its parent was killed would write files over what the next run
wrote.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def can_fork() -> bool:
    """Whether helpers can be forked here (not on Windows)."""
    return "fork" in multiprocessing.get_all_start_methods()


def die_with_parent(parent: int) -> None:
    """Called first in a forked helper: Linux kills it when the parent dies (PR_SET_PDEATHSIG);
    a helper whose parent died before that took effect exits at once. Elsewhere the helper's
    jobs check :func:`parent_gone` themselves."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if parent_gone(parent):
        os._exit(1)


def parent_gone(parent: int) -> bool:
    """Whether the process that forked this one (``parent``) is gone."""
    return os.getppid() != parent
