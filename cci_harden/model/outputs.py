"""Output paths, checked before any work: a run that ends in "cannot write" after an hour of
ingest or a fleet's verify has wasted the hour."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from .errors import CciHardenError


def require_writable(option: str, path: str | None, directory: bool = False) -> None:
    """Refuse ``path`` now unless its folder exists and is writable (``directory``: the path is
    a folder that may still be made inside an existing one)."""
    if not path:
        return
    target = Path(path)
    folder = target if directory else target.parent
    if directory and not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise CciHardenError(f"{option} {path}: cannot write there (no such writable folder)")


def emit(text: str, output: str | None, announce: bool = False) -> None:
    """``text`` to the file ``output`` names, or to standard output when it names none;
    ``announce``: say on stderr which file was written."""
    if output:
        Path(output).write_text(text)
        if announce:
            print(f"wrote {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def emit_lines(lines: Iterable[str], output: str | None) -> None:
    """``lines`` written as they come, to the file ``output`` names or to standard output: a
    long report is never held whole."""
    if output:
        with open(output, "w") as handle:
            handle.writelines(lines)
    else:
        sys.stdout.writelines(lines)


def note(message: str, quiet: bool = False) -> None:
    """A line for the operator on stderr (never mixed into a report on stdout)."""
    if not quiet:
        print(f"cci-harden: {message}", file=sys.stderr)


def colour(text: str) -> str:
    """FAIL and UNREACHABLE in red on a terminal; plain when piped or NO_COLOR is set."""
    if os.environ.get("NO_COLOR") or not sys.stdout.isatty():
        return text
    for word in ("FAIL", "UNREACHABLE"):
        text = text.replace(word, f"\x1b[31m{word}\x1b[0m")
    return text


def inventory_command(commands, name: str, help_text: str):
    """A subcommand whose first argument is an inventory (the shape most commands share)."""
    parser = commands.add_parser(name, help=help_text)
    parser.add_argument("inventory", help="inventory file, e.g. inventories/prod")
    return parser
