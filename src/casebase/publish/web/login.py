"""Who may code: the coders' login and the permission every coding page checks.

- ``/-/casebase/login`` (coding mode only): a coder logs in with the name and
  password from the coders file (``casebase coders add``) and gets Datasette's
  signed ``ds_actor`` cookie;
- the permission ``casebase-code``: granted to a logged-in actor whose name is
  in the coders file, read at every check;
- helpers the coding pages share: the logged-in coder, the redirect to the
  login page, a safe ``next`` target, form fields of a POST.

Logging in is guarded against guessing: after a few wrong passwords for one
coder, or from one address, further attempts wait an ever longer time (they
are refused without checking the password, so a flood of guesses costs the
server nothing), failures are logged, and the session cookie expires.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from urllib.parse import parse_qs, urlencode, urlsplit

from datasette.utils import baseconv
from datasette.utils.asgi import Response

from casebase.publish import coders
from casebase.publish import serving

ACTION = "casebase-code"
PREFIX = "/-/casebase"
# A coder's session lasts a working day and a half; then they log in again.
SESSION_SECONDS = 12 * 3600
# Wrong passwords allowed before the back-off starts, per coder and per address
# (higher: coders may share one address), and the longest wait.
FREE_FAILURES = {"coder": 5, "address": 20}
LONGEST_WAIT = 15 * 60
# Password hashing is slow on purpose; at most this many at once, so a flood of
# logins cannot take every worker thread from the pages.
VERIFYING = 2

log = logging.getLogger("casebase.login")


class LoginThrottle:
    """Wrong passwords per coder and per address, and how long each must wait.

    After the free failures, each further failure doubles the wait (2 s, 4 s, …,
    at most ``LONGEST_WAIT``) before the next attempt is even checked; a right
    password clears the coder's and the address's count."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[tuple[str, str], tuple[int, float]] = {}
        self.verifying = asyncio.Semaphore(VERIFYING)

    def wait(self, name: str, address: str) -> float:
        """Seconds until this coder may try again from this address (0: now)."""
        now = self._clock()
        with self._lock:
            waits = [0.0]
            for key in (("coder", name), ("address", address)):
                count, last = self._failures.get(key, (0, 0.0))
                over = count - FREE_FAILURES[key[0]]
                if over >= 0:
                    waits.append(last + min(LONGEST_WAIT, 2.0 ** (over + 1)) - now)
            return max(waits)

    def failed(self, name: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            for key in (("coder", name), ("address", address)):
                count, _ = self._failures.get(key, (0, 0.0))
                self._failures[key] = (count + 1, now)

    def succeeded(self, name: str, address: str) -> None:
        with self._lock:
            self._failures.pop(("coder", name), None)
            self._failures.pop(("address", address), None)


def throttle(datasette) -> LoginThrottle:
    state = serving.server_state(datasette)
    if state.login_throttle is None:
        state.login_throttle = LoginThrottle()
    return state.login_throttle


def routes():
    return [(rf"^{PREFIX}/login$", login_page)]


def permission_allowed(datasette, actor, action):
    if action == "execute-sql":
        # Typed SQL is off unless the server was started with --allow-sql: the
        # pages and canned queries are the published surface, and one typed query
        # can hold the server's memory and threads for seconds.
        # (A plain `datasette serve` without casebase's settings keeps Datasette's default.)
        settings = serving.config(datasette)
        return False if settings.get("db") and not settings.get("allow_sql") else None
    if action != ACTION:
        return None
    settings = serving.coding_settings(datasette)
    if not settings or not actor or not actor.get("id"):
        return False
    # Read at every check: removing a coder from the file ends their access at once.
    return actor["id"] in coders.names(settings.coders)


async def coder(datasette, request) -> str | None:
    """The logged-in coder's name, or None if the request may not code."""
    if await datasette.permission_allowed(request.actor, ACTION, default=False):
        return request.actor["id"]
    return None


def login_redirect(request) -> Response:
    """To the login page, and back to this page after logging in."""
    return Response.redirect(f"{PREFIX}/login?" + urlencode({"next": request.full_path}))


def safe_next(target: str) -> str:
    """Only a path on this server: never an open redirect to another site.

    Browsers read a backslash as a slash (``/\\evil.example`` is another host) and
    drop tabs and newlines, so neither may appear; what remains must parse as a
    path with no scheme and no host."""
    if (
        not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 32 or ord(c) == 127 for c in target)
    ):
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


async def read_form(request) -> dict[str, list[str]]:
    """The fields of a POSTed form, every value kept (a field may repeat)."""
    return parse_qs((await request.post_body()).decode("utf-8"), keep_blank_values=True)


def form_value(form: dict[str, list[str]], key: str, default: str = "") -> str:
    """A form field's first value."""
    return form.get(key, [default])[0]


async def login_page(datasette, request):
    settings = serving.coding_settings(datasette)
    next_url = safe_next(request.args.get("next") or f"{PREFIX}/queue")
    error = None
    status = 200
    if request.method == "POST":
        form = await read_form(request)
        name, password = form_value(form, "name").strip(), form_value(form, "password")
        next_url = safe_next(form_value(form, "next") or next_url)
        address = (request.scope.get("client") or ("?", 0))[0]
        guard = throttle(datasette)
        ok = False
        wait = guard.wait(name, address)
        if wait <= 0:
            # Checking a password hash is slow on purpose: off the event loop, a few at a
            # time. Guesses sent all at once all passed the check above and queued here,
            # so the back-off is asked again once it is this attempt's turn, and a
            # failure is counted before the next one's.
            async with guard.verifying:
                wait = guard.wait(name, address)
                if wait <= 0:
                    ok = await asyncio.get_running_loop().run_in_executor(None, coders.verify, settings.coders, name, password)
                    if not ok:
                        guard.failed(name, address)
        if wait > 0:
            log.warning("casebase: login for %r from %s refused for %.0f s after repeated failures", name, address, wait)
            error = f"For mange forkerte forsøg. Prøv igen om {max(1, round(wait))} sekunder."
            status = 429
        else:
            if ok:
                guard.succeeded(name, address)
                expires = baseconv.base62.encode(int(time.time()) + SESSION_SECONDS)
                response = Response.redirect(next_url)
                response.set_cookie(
                    "ds_actor",
                    datasette.sign({"a": {"id": name}, "e": expires}, "actor"),
                    httponly=True,
                    samesite="lax",
                    max_age=SESSION_SECONDS,
                )
                return response
            log.warning("casebase: failed login for %r from %s", name, address)
            error = "Forkert navn eller adgangskode."
            status = 403
    return Response.html(
        await datasette.render_template(
            "casebase_login.html", {"error": error, "next": next_url}, request=request
        ),
        status=status,
    )
