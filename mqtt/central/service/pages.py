"""The two server-rendered pages: the clerk's counter page and the operators' fleet page.

The pages carry no data themselves: the HTML names the counter (or nothing), and a little plain
JavaScript (``static/``, no build step) asks the API with the token the user entered once (kept
in the browser's localStorage). A strict Content-Security-Policy allows only our own scripts and
styles, and images from ``data:`` URLs (the face photo arrives inside the event).
"""

from __future__ import annotations

from functools import cache

import jinja2
from idstation.mqtt.enrolment.pairing import valid_name  # the one rule of sites and counters (1-64)
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse

__all__ = ["counter_page", "fleet_page"]

_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("idstation.mqtt.central.service", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def render(name: str, **context: object) -> str:
    return _env().get_template(name).render(**context)


async def counter_page(request: Request) -> HTMLResponse:
    site, counter = request.path_params["site"], request.path_params["counter"]
    if not (valid_name(site) and valid_name(counter)):
        raise HTTPException(404, "no such counter")
    freshness = request.app.state.service.freshness_s
    html = render("counter.html", site=site, counter=counter, freshness_s=int(freshness))
    return HTMLResponse(html, headers=_HEADERS)


async def fleet_page(request: Request) -> HTMLResponse:
    return HTMLResponse(render("fleet.html", refresh_s=2), headers=_HEADERS)
