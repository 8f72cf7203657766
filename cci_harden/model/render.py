"""Render the configuration files in ``templates/`` from settings and host facts.

Strict: an undefined variable is an error, never an empty string. No timestamps or host-local
state go into a render, so the same inputs always give the same bytes, and a second deploy run
finds nothing to change.
"""

from __future__ import annotations

import json
import shlex
import sys
from functools import cache
from pathlib import Path

import jinja2


def _templates() -> Path:
    """``templates/`` of the checkout, else where a wheel installs them (pyproject data-files)."""
    checkout = Path(__file__).resolve().parents[2] / "templates"
    installed = Path(sys.prefix) / "share" / "cci-harden" / "templates"
    return checkout if checkout.is_dir() or not installed.is_dir() else installed


TEMPLATES = _templates()


def hcl_string(value: object) -> str:
    """A quoted HCL string holding exactly ``value``: JSON's escapes (which HCL shares), with the
    ``$`` of ``${`` and the ``%`` of ``%{`` written as ``\\u`` escapes, so nothing in a value
    starts a template interpolation or directive."""
    return json.dumps(str(value)).replace("${", "\\u0024{").replace("%{", "\\u0025{")


def rainerscript_string(value: object) -> str:
    """A double-quoted rsyslog (RainerScript) string constant holding exactly ``value``:
    backslash and quote escaped; anything but printable ASCII refused, never rendered."""
    text = str(value)
    if not all(" " <= ch <= "~" for ch in text):
        raise ValueError(f"not printable ASCII, refused in an rsyslog string: {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def shell_word(value: object) -> str:
    """``value`` as one shell word, quoted (POSIX sh)."""
    return shlex.quote(str(value))


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        # Configuration files, not HTML: each value is escaped by the filter of its format.
        autoescape=False,  # noqa: S701
    )
    # Every value a template takes from settings or host facts goes through the filter of the
    # format it lands in: ``hcl`` for HCL strings, ``sh`` for shell words, ``rs`` for rsyslog
    # strings, ``tojson`` for JSON.
    env.filters["hcl"] = hcl_string
    env.filters["sh"] = shell_word
    env.filters["rs"] = rainerscript_string
    return env


def render(template: str, control_id: str, **context) -> str:
    """Render ``template`` for ``control_id``; the template's header names both."""
    return (
        environment()
        .get_template(template)
        .render(control_id=control_id, template=template, **context)
    )
