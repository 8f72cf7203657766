"""The command line behaves like its neighbours and every user error is one line."""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap

from cci_harden import __version__
from cci_harden.controls import ALL_CONTROLS, PROFILES

from .conftest import BIN, REPO, cli_here, run_cli
from .test_cloud_policies import BUCKET, EXAMPLE, write_inventory


def test_version():
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"cci-harden {__version__}"


def test_building_the_parser_loads_no_settings_models_or_audit_engine():
    """Every command builds the whole parser: what only some commands need (the settings
    models, the controls, numpy and msgspec) must load when those commands run, so that
    `cci-harden audit hunt` and `--version` start small."""
    probe = (
        "import sys; from cci_harden.cli import build_parser; build_parser(); "
        "print(' '.join(sorted(m for m in ('cci_harden.config.settings', 'cci_harden.controls', "
        "'pydantic', 'numpy', 'msgspec') if m in sys.modules)))"
    )
    loaded = subprocess.run(
        [str(BIN / "python"), "-c", probe], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert loaded.stdout.split() == []


def test_controls_are_listed_from_the_catalogue():
    from cci_harden.controls.listing import render

    listed = json.loads(run_cli("controls", "--format", "json").stdout)
    assert [c["id"] for c in listed] == [c.id for c in ALL_CONTROLS]
    assert all(c["sources"] and c["title"] and c["resources"] for c in listed)
    baseline = json.loads(render("baseline", "json"))
    # a profile lists what its deploy applies: its controls, then the toolkit's own two
    assert [c["id"] for c in baseline] == [c.id for c in PROFILES["baseline"]] + [
        "CCI-TK-02",
        "CCI-TK-01",
    ]
    assert "CCI-SSH-01  sshd: keys only" in render(None, "table")
    assert render(None, "md").startswith("| id | title | sources | frameworks | resources |")


def test_a_closed_pipe_ends_quietly():
    for _ in range(2):
        proc = subprocess.run(
            [
                "bash",
                "-o",
                "pipefail",
                "-c",
                f"{BIN}/cci-harden controls --format json | head -c 5",
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_a_bad_cidr_is_one_line_in_words(tmp_path):
    inventory = write_inventory(tmp_path, EXAMPLE)
    for value, says in (
        ("198.51.100.5/24", "has host bits set: write 198.51.100.0/24"),
        ("banana", "is not a network in CIDR form"),
    ):
        proc = run_cli(
            "config", "check", str(inventory), env={"CCI_NETWORK__ADMIN_CIDRS": json.dumps([value])}
        )
        lines = [ln for ln in proc.stderr.splitlines() if "admin_cidrs" in ln]
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert says in lines[0] and "CCI_NETWORK__ADMIN_CIDRS" in lines[0]
        assert "lax-or-strict" not in proc.stderr and "validator" not in proc.stderr


def test_an_unwritable_output_is_refused_before_any_work(capsys):
    from cci_harden.cli import main

    proc = run_cli("verify", "inventories/prod", "--json", "/no/such/folder/out")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    for option in ("--json", "--junit", "--markdown", "--html"):
        assert main(["verify", "inventories/prod", option, "/no/such/folder/out"]) == 2
        assert capsys.readouterr().err.strip() == (
            f"cci-harden: error: {option} /no/such/folder/out: cannot write there "
            "(no such writable folder)"
        )


def test_a_second_render_leaves_no_stale_file(tmp_path):
    two = EXAMPLE.replace(f'buckets = ["{BUCKET}"]', f'buckets = ["{BUCKET}", "old-bucket-x"]')
    out = tmp_path / "iam"

    def render(settings: str) -> None:
        inventory = write_inventory(tmp_path, settings)
        proc = run_cli("render", "iam", "--cloud", "aws", str(inventory), "--output-dir", str(out))
        assert proc.returncode == 0, proc.stderr

    render(two)
    assert (out / "aws-bucket-policy-old-bucket-x.json").exists()
    (out / "operator-notes.txt").write_text("not ours: kept\n")
    render(EXAMPLE)
    assert not (out / "aws-bucket-policy-old-bucket-x.json").exists()
    assert (out / f"aws-bucket-policy-{BUCKET}.json").exists()
    assert (out / "operator-notes.txt").exists()
    listed = (out / "MANIFEST").read_text()
    assert "old-bucket-x" not in listed


def _leaf_commands(parser, path=()):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                inner = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
                if inner:
                    yield from _leaf_commands(sub, (*path, name))
                else:
                    yield (*path, name), sub


def test_every_command_has_an_example_in_its_help():
    from cci_harden.cli import build_parser

    leaves = dict(_leaf_commands(build_parser()))
    assert ("verify",) in leaves and ("audit", "hunt") in leaves
    for path, sub in leaves.items():
        text = sub.format_help()
        assert "Example: " in text and "cci-harden " + " ".join(path) in text, path


def test_quiet_and_colour_follow_the_conventions(capsys, monkeypatch):
    from cci_harden import cli
    from cci_harden.model.outputs import colour

    cli._QUIET = True
    try:
        cli._info("should not show")
    finally:
        cli._QUIET = False
    assert capsys.readouterr().err == ""
    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert colour("FAIL tb1") == "\x1b[31mFAIL\x1b[0m tb1"
    monkeypatch.setenv("NO_COLOR", "1")
    assert colour("FAIL tb1") == "FAIL tb1"


def test_the_hunt_refuses_an_unwritable_output_before_reading_anything(tmp_path):
    export = tmp_path / "never-read.csv"  # does not exist: the output is refused first
    proc = run_cli("audit", "hunt", str(export), "--output", "/no/such/folder/findings.jsonl")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--output /no/such/folder/findings.jsonl: cannot write there" in proc.stderr


def test_bash_completion_offers_subcommands_then_their_flags(tmp_path):
    script = tmp_path / "completion.sh"
    script.write_text(cli_here("completion").stdout)
    probe = textwrap.dedent(f"""
        source {script}
        complete_words() {{ COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _cci_harden;
                            printf '%s\\n' "${{COMPREPLY[*]}}"; }}
        complete_words cci-harden ver
        complete_words cci-harden waivers l
        complete_words cci-harden verify inventories/prod --rep
    """)  # fmt: skip
    lines = subprocess.run(
        ["bash", "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout.splitlines()
    assert lines == ["verify", "list lint", "--report-dir"], lines


def test_the_man_page_renders_cleanly_and_names_every_command():
    from cci_harden.cli import build_parser

    page = cli_here("man").stdout
    shown = subprocess.run(
        ["man", "--warnings", "-l", "-"], input=page, capture_output=True, text=True,
        env={**os.environ, "MANWIDTH": "100", "MAN_KEEP_FORMATTING": "0"},
    )  # fmt: skip
    assert shown.returncode == 0 and not shown.stderr.strip(), shown.stderr
    text = re.sub(r".\x08", "", shown.stdout)
    for path, _sub in _leaf_commands(build_parser()):
        assert f"cci-harden {' '.join(path)}" in text, path


def test_without_the_test_bed_its_commands_say_where_it_is(monkeypatch):
    """The wheel image bakes install leaves the test bed out: its commands say so in one line."""
    import sys

    monkeypatch.setitem(sys.modules, "cci_harden.testbed", None)  # as if not installed
    proc = cli_here("testbed", "status")
    assert proc.returncode == 2 and "comes with the repository" in proc.stderr
    assert "Traceback" not in proc.stderr
