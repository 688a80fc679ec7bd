"""A build process started before it is needed: the coding server's retrain without the wait.

``python -m casebase.publish.warm_build build ARGS`` imports what a build needs
(scikit-learn and the classifier, spaCy and the Danish pipeline, the build's own
modules: 1.5–4 s of a fresh ``casebase build``, with the machine's load)
and then waits. One line ``go`` on stdin runs ``casebase build ARGS`` exactly as
``python -m casebase build ARGS`` would: the same command, output, JSON progress
on stderr and exit status; then the process exits. The end of stdin instead
(the server stopped or was killed: the kernel closes its end of the pipe) ends
the process at once, even in the middle of its imports, so a server leaves no
idle build process behind.

Loading ahead is best effort: should an import fail here, the build imports
what it needs itself and fails, or not, exactly as a fresh process would.
``retraining.WarmBuild`` starts these processes and decides when one is stale.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

GO = "go"


def _wait_for_go(go: threading.Event) -> None:
    if sys.stdin.readline().strip() != GO:
        os._exit(0)  # the server is gone: no build will be asked for
    go.set()


def preload() -> None:
    """Import and load what a build may need, before it is asked for."""
    import casebase.cli  # noqa: F401  (the command itself, click and the build's modules)
    import casebase.pipeline  # noqa: F401
    from casebase.coding import classifier, evaluation, out_of_fold, scoring  # noqa: F401  (scikit-learn)
    from casebase.nlp import danish

    danish.load_pipeline()  # cached for the process: the build's analyser and matcher use this one


def main(arguments: list[str]) -> None:
    # While idle, Ctrl-C at the server's terminal (sent to its whole process group)
    # ends this process quietly; the build then reacts to it as a fresh one would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    go = threading.Event()
    threading.Thread(target=_wait_for_go, args=(go,), daemon=True).start()
    try:
        preload()
    except Exception:  # noqa: BLE001  (see the module's docstring: the build reports its own failures)
        pass
    go.wait()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from casebase.cli import cli

    cli.main(args=arguments, prog_name="casebase")


if __name__ == "__main__":
    main(sys.argv[1:])
