"""How far a build or an import has come: per stage, the things done (excerpts, rows,
selections; of how many) and the time left.

A build reports its stages to a ``Progress``; a terminal shows them as one line that
updates in place, the coding server's retrain reads them as JSON lines from the build
it runs and shows them on the coders' pages. The time left is the stage's elapsed
time scaled by what is left of it: in the first pass the share of the source files'
text read so far (the number of excerpts is not known before the texts are cut), in
the coding pass the excerpts coded of all of them. ``import-decisions`` and
``import qdpx`` report their stages the same way.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Callable

# What each stage does, in Danish, as a coder or a user at the terminal reads it.
STAGES = {
    "read": "Læser og analyserer teksterne",
    "train": "Træner modellen",
    "code": "Koder uddragene",
    "store": "Skriver databasen",
    # casebase import-decisions
    "decisions": "Læser og kontrollerer beslutningerne",
    "append": "Skriver beslutningerne",
    # casebase import qdpx
    "project": "Læser projektet",
    "place": "Placerer kodningerne på uddragene",
    "corpus": "Skriver korpusset",
}
# What a stage counts, when it is not excerpts ("uddrag").
UNITS = {"decisions": "rækker", "append": "beslutninger", "project": "kilder", "place": "markeringer"}


@dataclass(frozen=True)
class Step:
    stage: str
    done: int  # excerpts
    total: int | None  # excerpts, when known
    share: float | None  # of the stage's work, 0..1, when it can be told
    seconds: float  # spent in the stage so far
    left: float | None  # seconds, estimated
    finished: bool = False  # the stage's last step

    def danish(self) -> str:
        """The step as one Danish line: "Koder uddragene: 1.200 af 2.324 uddrag, ca. 10 s tilbage"."""
        text = STAGES.get(self.stage, self.stage)
        unit = UNITS.get(self.stage, "uddrag")
        if self.finished:
            counted = f"{number(self.done)} {unit}, " if self.done else ""
            return f"{text}: {counted}færdig på {duration(self.seconds)}"
        if self.total is not None:
            text += f": {number(self.done)} af {number(self.total)} {unit}"
        elif self.done:
            text += f": {number(self.done)} {unit}"
            if self.share is not None:
                text += f" ({round(100 * self.share)} % {'af teksterne' if unit == 'uddrag' else 'af filen'})"
        else:
            text += " …"
        if self.left is not None:
            text += f", ca. {duration(self.left)} tilbage"
        return text

    def json(self) -> str:
        return json.dumps({"progress": asdict(self)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> Step | None:
        """The step a ``json()`` line holds, or None for any other line."""
        try:
            data = json.loads(line)
            return cls(**data["progress"])
        except (ValueError, TypeError, KeyError):
            return None


class Progress:
    """Collects a build's stages and passes a ``Step`` to ``report`` at each stage's
    start and end and, in between, at most every ``every`` seconds."""

    def __init__(self, report: Callable[[Step], None] | None = None, every: float = 0.25, clock=time.monotonic):
        self.report = report
        self.every = every
        self.clock = clock
        self.stage: str | None = None
        self.done, self.total, self.share = 0, None, None
        self.began = self.reported = 0.0

    def start(self, stage: str, total: int | None = None) -> None:
        self.end()
        self.stage, self.done, self.total, self.share = stage, 0, total, None
        self.began = self.clock()
        self._send(force=True)

    def advance(self, excerpts: int, share: float | None = None) -> None:
        """``excerpts`` more done; ``share`` of the stage done, when the total is not known."""
        self.done += excerpts
        if share is not None:
            self.share = min(max(share, 0.0), 1.0)
        self._send()

    def end(self) -> None:
        if self.stage is None:
            return
        if self.total is not None:
            self.done = self.total
        self.share = 1.0 if self.share is not None else None
        self._send(force=True, finished=True)
        self.stage = None

    def _send(self, force: bool = False, finished: bool = False) -> None:
        if self.report is None or self.stage is None:
            return
        now = self.clock()
        if not force and now - self.reported < self.every:
            return
        self.reported = now
        seconds = now - self.began
        share = self.done / self.total if self.total else self.share
        left = 0.0 if finished else (seconds * (1 - share) / share if share and seconds > 0 else None)
        self.report(Step(self.stage, self.done, self.total, self.share, round(seconds, 2), None if left is None else round(left, 1), finished))


def number(n: int) -> str:
    """12345 as Danish writes it: 12.345."""
    return f"{n:,}".replace(",", ".")


def duration(seconds: float) -> str:
    """Seconds as "45 s", "3 min 20 s" or "1 t 5 min"."""
    seconds = max(int(round(seconds)), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} t {minutes} min"
