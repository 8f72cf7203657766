"""Render the configuration files in ``templates/`` from settings and host facts.

Strict: an undefined variable is an error, never an empty string. No timestamps or host-local
state go into a render, so the same inputs always give the same bytes, and a second deploy run
finds nothing to change.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render(template: str, control_id: str, **context) -> str:
    """Render ``template`` for ``control_id``; the template's header names both."""
    return (
        environment()
        .get_template(template)
        .render(control_id=control_id, template=template, **context)
    )
