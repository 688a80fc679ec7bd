"""Retraining from the coders' pages: a full build of the served database in the background.

One ``Retraining`` belongs to one coding server (``serving.ServerState``). The
retrain button starts ``python -m casebase build`` in its own process, from a
thread, so the server keeps answering while the build retrains on every
decision saved so far, recodes everything and swaps the database file in
atomically; the server serves the new file from the next request on
(``serving.swap_if_rebuilt``). At most one build runs at a time, and the
pages show its status until the new database is served (``Retraining.banner``).

A build in a new process spends its first seconds importing scikit-learn and
spaCy and loading the Danish pipeline. A server that keeps its build warm
(``keep_warm``, as ``casebase serve --coding`` does) has a process ready that
has done so (``warm_build``): the button hands the build to it, and the next
one is started once that build has ended. A warm process that has died, or was
started before casebase's code or the installed packages changed, is not used:
the build then runs in a new process, as without warming.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path

from casebase.coding import decision_files
from casebase.publish import warm_build
from casebase.progress import Step
from casebase.store import fingerprint


class Retraining:
    """The background build of one served database and what the pages say about it.

    ``status()`` is empty until a retrain has been started, then holds
    ``running``, ``started`` and ``by`` (the coder), and once the build has
    ended also ``finished``, ``ok``, ``unchanged`` (the build found nothing new
    and kept the database), ``error`` (the first error line of a failed build)
    and ``output`` (the build's own lines, in English). ``banner()`` turns
    that into what a coder reads.
    """

    def __init__(self, corpus: Path, codebook: Path, db: str):
        # The same build as 'casebase build' on the command line, with this
        # Python, so a retrain runs the code and the packages the server runs.
        self.arguments = [
            "build",
            "--corpus",
            str(corpus),
            "--codebook",
            str(codebook),
            "--db",
            str(db),
            # How far the build has come, a JSON line at a time on stderr (casebase.progress).
            "--progress",
            "json",
        ]
        self.command = [sys.executable, "-m", "casebase", *self.arguments]
        # Guards _status and _warm: the request threads read them while the build's thread writes them.
        self._lock = threading.Lock()
        self._status: dict = {}
        self._keep_warm = False
        self._warm: WarmBuild | None = None  # the process ready for the next build

    def keep_warm(self) -> None:
        """Have a build process ready from now on (and after every build)."""
        with self._lock:
            self._keep_warm = True
            if self._warm is None and not self._status.get("running"):
                self._warm = WarmBuild.start(self.arguments)

    def close(self) -> None:
        """End the waiting build process (a server that stops). A build that runs is not
        ended here; once the server's process has exited, the build fails at its next
        progress line (its stderr is the server's pipe) and the old database stays."""
        with self._lock:
            self._keep_warm = False
            warm, self._warm = self._warm, None
        if warm:
            warm.discard()

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
        with self._lock:
            warm, self._warm = self._warm, None
        if warm is not None and warm.go():
            process, stdout = warm.process, warm.stdout
        else:
            # stdout is a few summary lines, kept in a file so that reading stderr as it
            # comes can never block on a full pipe.
            stdout = tempfile.TemporaryFile(mode="w+", encoding="utf-8")
            process = subprocess.Popen(self.command, stdout=stdout, stderr=subprocess.PIPE, text=True, encoding="utf-8")
        with self._lock:
            self._status["warm"] = process is getattr(warm, "process", None)
        with stdout:
            errors = []
            for line in process.stderr:
                step = Step.from_json(line)
                if step is None:
                    errors.append(line)
                else:
                    with self._lock:
                        self._status["progress"] = step
            returncode = process.wait()
            process.stderr.close()
            stdout.seek(0)
            output = stdout.read().strip()
        stderr = "".join(errors)
        with self._lock:
            self._status.update(
                running=False,
                finished=decision_files.now(),
                ok=returncode == 0,
                unchanged=returncode == 0 and output.startswith(UP_TO_DATE),
                error=None if returncode == 0 else first_error(stderr, returncode),
                output="\n".join(part for part in (output, stderr.strip()) if part),
            )
            if self._keep_warm:
                # Started once this build has ended, so the two never share the cores.
                self._warm = WarmBuild.start(self.arguments)

    def banner(self, served: dict[str, str]) -> dict:
        """What the coding pages say about the retrain, given the served database's
        build_info: a build that has ended is not done for a coder until the
        server serves its database (its ``built_at`` is not older than the
        retrain's start).

        ``state`` is "" (no retrain since the server started), "running",
        "waiting" (built, not yet served), "served", "unchanged" or "failed";
        ``text`` says it in Danish; ``error`` and ``output`` as in ``status()``.
        """
        status = self.status()
        if not status:
            return {"state": "", "text": ""}
        who = f"startet kl. {clock(status['started'])} af {status['by']}"
        if status["running"]:
            step = status.get("progress")
            doing = f" {step.danish()}." if step else ""
            state, text = "running", f"Gen-træning i gang ({who}).{doing} Siderne viser den nye model, når den er taget i brug."
        elif not status["ok"]:
            state, text = "failed", f"Gen-træningen fejlede kl. {clock(status['finished'])} ({who}); den gamle model er stadig i brug."
        elif status["unchanged"]:
            state, text = "unchanged", (
                f"Gen-træningen kl. {clock(status['finished'])} fandt intet nyt at træne på: "
                "databasen var allerede bygget af præcis disse beslutninger og kodebogen."
            )
        elif _served_since(served.get("built_at"), status["started"]):
            state, text = "served", (
                f"Gen-træningen er færdig og i brug fra kl. {clock(status['finished'])}: "
                f"model {served.get('model_run') or 'ingen'} ({who})."
            )
        else:
            state, text = "waiting", f"Gen-træningen er bygget ({who}); serveren tager den nye database i brug ved næste sidevisning."
        return {"state": state, "text": text, "error": status.get("error"), "output": status.get("output", "")}


class WarmBuild:
    """One ``warm_build`` process, started with the build's arguments, waiting for its go."""

    def __init__(self, arguments: list[str]):
        self.started_on = code_state()
        self.stdout = tempfile.TemporaryFile(mode="w+", encoding="utf-8")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "casebase.publish.warm_build", *arguments],
                stdin=subprocess.PIPE,
                stdout=self.stdout,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
            )
        except OSError:
            self.stdout.close()
            raise

    @classmethod
    def start(cls, arguments: list[str]) -> WarmBuild | None:
        """A new warm process, or None if none could be started (builds then start their own)."""
        try:
            return cls(arguments)
        except OSError:
            return None

    def go(self) -> bool:
        """Hand it the build. False (and the process ended) when it cannot be
        trusted with it: it has died, or the code it loaded is no longer casebase's."""
        if self.process.poll() is None and code_state() == self.started_on:
            try:
                self.process.stdin.write(warm_build.GO + "\n")
                self.process.stdin.close()
                return True
            except OSError:  # it died just now (a broken pipe)
                pass
        self.discard()
        return False

    def discard(self) -> None:
        try:
            self.process.stdin.close()  # end of input: an idle warm process exits at once
        except OSError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stderr.close()
        self.stdout.close()


def code_state() -> str:
    """What a warm process loaded: casebase's code and data, and every installed
    distribution's name and version (as named by its metadata directory)."""
    digest = hashlib.sha256(fingerprint.code_fingerprint.__wrapped__().encode())
    for directory in sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}):
        try:
            names = sorted(p.name for p in Path(directory).iterdir() if p.suffix in (".dist-info", ".egg-info"))
        except OSError:
            names = []
        digest.update("\0".join(names).encode())
    return digest.hexdigest()


# The first words of 'casebase build' when no input changed (cli.build).
UP_TO_DATE = "Up to date"
# A line that says what went wrong: casebase's own "Error: ..." or an exception's last line.
_ERROR_LINE = re.compile(r"^(Error:|[A-Za-z_.]*(Error|Exception)\b)")


def first_error(stderr: str, returncode: int) -> str:
    """The first line of a failed build's output that names the error."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    found = next((line for line in lines if _ERROR_LINE.match(line)), None)
    return found or (lines[-1] if lines else f"bygningen sluttede med kode {returncode}")


def clock(timestamp: str) -> str:
    """A stored UTC time as the server's local hour and minute."""
    return decision_files.moment(timestamp).astimezone().strftime("%H:%M")


def _served_since(built_at: str | None, started: str) -> bool:
    if not built_at:
        return False
    try:
        return decision_files.moment(built_at) >= decision_files.moment(started)
    except ValueError:
        return False
