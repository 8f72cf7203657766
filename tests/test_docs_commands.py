"""Every command the README and the guides show names a subcommand, flag and file that exist.

Commands come from fenced shell blocks and from inline code that starts with ``cci-harden``;
each is walked through the CLI's own parser, so a renamed flag or a dropped subcommand fails
here instead of in an operator's first hour."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess

import pytest

from cci_harden.cli import build_parser

from .conftest import BIN, REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"```(?:sh|bash|console)\n(.*?)```", re.DOTALL)
INLINE = re.compile(r"`((?:\.venv/bin/)?cci-harden [^`]+)`")
# repository files a command may name (an operator's own inventories and reports are theirs)
OURS = re.compile(r"^(docs|deploys|templates|bench|tests|config\.py|bootstrap\.sh)\b")


def fenced_lines(page) -> list[str]:
    """The command lines of a page's shell blocks, comments cut off."""
    found = []
    for block in FENCE.findall(page.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            command = re.split(r"\s+#\s", line.strip(), maxsplit=1)[0].strip()
            if command and not command.startswith("#"):
                found.append(command)
    return found


def shown_commands() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        found += [(page.name, line) for line in fenced_lines(page)]
        found += [(page.name, span) for span in INLINE.findall(page.read_text())]
    return found


COMMANDS = shown_commands()


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


def _walk(parser: argparse.ArgumentParser, words: list[str]) -> list[str]:
    """The problems of ``words`` as arguments of ``parser``: unknown subcommands and flags."""
    problems = []
    current = parser
    for word in words:
        if word in ("|", "&&", ";", ">", "2>&1") or word.startswith((">", "$(")):
            break
        if word.startswith("-") and word != "-":
            flag = word.split("=", 1)[0]
            if flag not in current._option_string_actions:  # noqa: SLF001
                problems.append(f"unknown flag {flag} for {current.prog}")
            continue
        commands = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]  # noqa: SLF001
        if commands:
            choices = commands[0].choices
            if word in choices:
                current = choices[word]
            elif not word.isupper():  # INVENTORY and the like are placeholders
                problems.append(f"unknown subcommand {word!r} of {current.prog}")
                break
    return problems


@pytest.mark.parametrize(("page", "command"), COMMANDS, ids=[f"{p}:{c[:60]}" for p, c in COMMANDS])
def test_a_shown_command_names_what_exists(page, command):
    words = _words(command)
    while words and ("=" in words[0] and not words[0].startswith("-")):
        words = words[1:]  # VAR=value prefixes
    if not words:
        return
    program = words[0].removeprefix(".venv/bin/").removeprefix("sudo ")
    problems = []
    if program == "cci-harden":
        problems += _walk(build_parser(), words[1:])
    for word in words[1:]:
        if OURS.match(word) and "*" not in word and not (REPO / word).exists():
            problems.append(f"no file {word}")
    assert not problems, f"{page}: {command}: {'; '.join(problems)}"


def test_the_pages_show_commands_at_all():
    assert sum(1 for _p, c in COMMANDS if "cci-harden" in c) > 30


# The README's fleet block and the operator guide, line by line in their order, on a fresh copy
# of the repository: what runs with no host (and what it must end with), and what needs hosts,
# root, the package index or files a host run wrote. ``.venv/bin/`` is taken off before lookup.
ELSEWHERE = (
    "./bootstrap.sh",  # installs from the package index
    "pyinfra ",
    "pytest ",
    "ssh-keyscan ",
    "cci-harden known-hosts ",  # reads what ssh-keyscan wrote
    "cci-harden plan inventories/prod-eu --diff",
    "cci-harden rollout ",
    "cci-harden verify ",
    "cci-harden report reports/",  # reads what verify wrote
    "cci-harden artifacts audit ",
    "cci-harden apply --local ",
    "cci-harden audit hunt export-*",  # the operator's own exports
)
RUNS_HERE = {
    'eval "$(cci-harden completion)"': (0, ""),
    "cci-harden man | man -l -": (0, "cci-harden plan"),
    "cci-harden init prod-eu": (0, "Pre-flight checklist"),
    # the example names signing keys and certificates that are the operator's own to add
    "cci-harden config check inventories/prod": (2, "not ready to deploy"),
    "cci-harden config check inventories/prod-eu": (2, "not ready to deploy"),
    "cci-harden plan inventories/prod --output plan": (0, "no host was contacted"),
    "cci-harden plan inventories/prod-eu --output plan/": (0, "needs material"),
    "cci-harden controls --profile nomad --format md": (0, "| CCI-TK-01 |"),
    "cci-harden render iam --cloud aws inventories/prod": (0, "MANIFEST"),
    "cci-harden render seccomp -o circleci.json": (0, ""),
    "cci-harden waivers lint inventories/prod-eu": (0, "0 waiver(s), no problem"),
    "cci-harden waivers list inventories/prod-eu --format json": (0, '"waivers": []'),
}


def readme_fleet_block() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("## Using it on your fleet", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [re.split(r"\s+#\s", line, maxsplit=1)[0].strip() for line in block.splitlines()]


def run_as_written(lines: list[str], directory) -> set[str]:
    """Run each line (bash, from ``directory``) that needs no host; return those run."""
    shutil.copytree(REPO / "inventories", directory / "inventories")
    (directory / ".venv").symlink_to(BIN.parent)
    env = {**os.environ, "MANWIDTH": "100", "PATH": f"{BIN}:{os.environ['PATH']}"}
    ran = set()
    for line in dict.fromkeys(lines):
        key = line.replace(".venv/bin/", "")
        if key.startswith(ELSEWHERE):
            continue
        assert key in RUNS_HERE, f"{line}: say whether it runs here or needs a host"
        code, says = RUNS_HERE[key]
        proc = subprocess.run(
            ["bash", "-o", "pipefail", "-c", line], cwd=directory, capture_output=True,
            text=True, timeout=120, env=env,
        )  # fmt: skip
        assert proc.returncode == code, f"{line}: exit {proc.returncode}\n{proc.stderr[-2000:]}"
        assert "Traceback" not in proc.stderr and says in proc.stdout + proc.stderr, line
        ran.add(key)
    return ran


def test_every_readme_fleet_line_runs_as_written_or_says_it_needs_a_host(tmp_path):
    ran = run_as_written(readme_fleet_block(), tmp_path)
    assert "cci-harden init prod-eu" in ran and (tmp_path / "inventories/prod-eu.toml").is_file()
    assert (tmp_path / "circleci.json").is_file()


def test_the_operator_guide_runs_as_written_where_it_needs_no_host(tmp_path):
    ran = run_as_written(fenced_lines(REPO / "docs" / "operator-guide.md"), tmp_path)
    assert "cci-harden waivers lint inventories/prod-eu" in ran
    assert (tmp_path / "plan" / "each-host" / "etc").is_dir()


def test_the_project_speaks_of_itself_only():
    """No file names the work that made it (numbered work items, meetings, scratch folders):
    a reader has none of them."""
    words = ("se" + "ed", "iss" + "ue", "sess" + "ion", "ti" + "cket")
    pattern = re.compile(
        r"(?<![/.])\b(?:" + "|".join(words) + r")s?\s*#?\d+\b|\bno" + r"tes/|\bwork " + words[2],
        re.IGNORECASE,
    )
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    found = []
    for name in tracked:
        path = REPO / name
        if path.suffix in (".png", ".gz", ".lock") or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{name}:{number}: {line.strip()[:80]}")
    assert not found, "\n".join(found)
