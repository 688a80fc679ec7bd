"""Who may code: the coders' login and the permission every coding page checks.

- ``/-/casebase/login`` (coding mode only): a coder logs in with the name and
  password from the coders file (``casebase coders add``) and gets Datasette's
  signed ``ds_actor`` cookie;
- the permission ``casebase-code``: granted to a logged-in actor whose name is
  in the coders file, read at every check;
- helpers the coding pages share: the logged-in coder, the redirect to the
  login page, a safe ``next`` target, form fields of a POST.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlencode

from datasette.utils.asgi import Response

from casebase.publish import coders
from casebase.publish import serving

ACTION = "casebase-code"
PREFIX = "/-/casebase"


def routes():
    return [(rf"^{PREFIX}/login$", login_page)]


def permission_allowed(datasette, actor, action):
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
    # Only paths on this server: never an open redirect to another site.
    return target if target.startswith("/") and not target.startswith("//") else "/"


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
    if request.method == "POST":
        form = await read_form(request)
        name, password = form_value(form, "name").strip(), form_value(form, "password")
        next_url = safe_next(form_value(form, "next") or next_url)
        # Checking a password hash is slow on purpose: off the event loop.
        ok = await asyncio.get_running_loop().run_in_executor(None, coders.verify, settings.coders, name, password)
        if ok:
            response = Response.redirect(next_url)
            response.set_cookie("ds_actor", datasette.sign({"a": {"id": name}}, "actor"), httponly=True, samesite="lax")
            return response
        error = "Forkert navn eller adgangskode."
    return Response.html(
        await datasette.render_template(
            "casebase_login.html", {"error": error, "next": next_url}, request=request
        ),
        status=403 if error else 200,
    )
