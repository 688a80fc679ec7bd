"""Retraining from the coders' pages: a full build of the served database in the background.

One ``Retraining`` belongs to one coding server (``serving.ServerState``). The
retrain button starts ``python -m casebase build`` in its own process, from a
thread, so the server keeps answering while the build retrains on every
decision saved so far, recodes everything and swaps the database file in
atomically; the server serves the new file from the next request on
(``serving.swap_if_rebuilt``). At most one build runs at a time, and the
pages show its status.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from casebase.coding import decision_files


class Retraining:
    """The background build of one served database and what the pages say about it.

    ``status()`` is empty until a retrain has been started, then holds
    ``running``, ``started`` and ``by`` (the coder), and once the build has
    ended also ``finished``, ``ok``, ``message`` (the build's last line, or its
    last error line) and ``output``.
    """

    def __init__(self, corpus: Path, codebook: Path, db: str):
        # The same build as 'casebase build' on the command line, with this
        # Python, so a retrain runs the code and the packages the server runs.
        self.command = [
            sys.executable,
            "-m",
            "casebase",
            "build",
            "--corpus",
            str(corpus),
            "--codebook",
            str(codebook),
            "--db",
            str(db),
        ]
        # Guards _status: the request threads read it while the build's thread writes it.
        self._lock = threading.Lock()
        self._status: dict = {}

    def status(self) -> dict:
        """A copy of the status, for a page to show."""
        with self._lock:
            return dict(self._status)

    def start(self, by: str) -> bool:
        """Start a build unless one is running; returns whether this call started one."""
        with self._lock:
            if self._status.get("running"):
                return False
            self._status = {"running": True, "started": decision_files.now(), "by": by}
            threading.Thread(target=self._run, daemon=True).start()
            return True

    def _run(self) -> None:
        process = subprocess.run(self.command, capture_output=True, text=True)
        lines = (process.stdout if process.returncode == 0 else process.stderr).strip().splitlines()
        with self._lock:
            self._status.update(
                running=False,
                finished=decision_files.now(),
                ok=process.returncode == 0,
                message=lines[-1] if lines else "",
                output=process.stdout.strip(),
            )
