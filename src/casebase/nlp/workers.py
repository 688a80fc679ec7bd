"""Worker processes for the heavy stages (the NLP, the model's scoring).

Workers are forked from the build after it has loaded what they need (the
Danish pipeline and matcher, or the model), so they share it copy-on-write
instead of loading it again, and receive only texts and send back plain data.
"""

from __future__ import annotations

import multiprocessing
import os

_STATE = None  # what the parent loaded for its workers, inherited through fork


def state():
    return _STATE


def default_processes() -> int:
    """CASEBASE_PROCESSES if set, else one per CPU core this process may use."""
    wanted = os.environ.get("CASEBASE_PROCESSES", "")
    if wanted.strip().isdigit() and int(wanted) > 0:
        return int(wanted)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _die_with_parent() -> None:
    """A worker of a killed build exits with it instead of waiting forever for
    work (Linux; elsewhere the worker notices when its pipe closes)."""
    try:
        import ctypes
        import signal

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


class Workers:
    def __init__(self, processes: int, shared):
        global _STATE
        _STATE = shared
        self.pool = multiprocessing.get_context("fork").Pool(processes, initializer=_die_with_parent)

    def map_async(self, function, chunks: list):
        return self.pool.map_async(function, chunks, chunksize=1)

    def map(self, function, chunks: list) -> list:
        return self.pool.map(function, chunks, chunksize=1)

    def close(self) -> None:
        global _STATE
        self.pool.close()
        self.pool.join()
        _STATE = None


def overlapped(batches, start, finish):
    """For each (item, batch) of ``batches``: (item, *finish(batch, *start(batch))),
    in order. The next batch is started (handed to the workers) before the previous
    one is finished, so the workers compute one while the caller handles the other."""
    pending = None
    for item, batch in batches:
        started = start(batch)
        if pending is not None:
            yield pending[0], *finish(*pending[1:])
        pending = (item, batch, *started)
    if pending is not None:
        yield pending[0], *finish(*pending[1:])
