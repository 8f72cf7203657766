"""Audit-log ingest and hunting on generated exports; findings asserted exactly."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime

import pytest

from cci_harden.audit.events import COLUMNS
from cci_harden.audit.generate import event_row, generate
from cci_harden.audit.ingest import IngestStats, NotAnAuditExport, read_exports

from .conftest import cli_here

UTC = UTC
HOME_ALICE, HOME_BOB, EVIL = "198.51.100.7", "198.51.100.8", "203.0.113.66"


def at(day: str, hour: int, minute: int = 0) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:{minute:02d}:00").replace(tzinfo=UTC)


def ident(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


@pytest.fixture
def incident(tmp_path):
    """A small export with a planted incident in the window 2022-12-21 .. 2023-01-05."""
    rows = []
    for day in range(1, 7):  # baseline: alice at 10:00, bob at 14:00, from their usual addresses
        rows.append(
            event_row(
                "user.logged_in",
                at(f"2022-12-0{day}", 10),
                "alice",
                target=("user", "alice"),
                ip=HOME_ALICE,
                event_id=ident(day),
            )
        )
        rows.append(
            event_row(
                "user.logged_in",
                at(f"2022-12-0{day}", 14),
                "bob",
                target=("user", "bob"),
                ip=HOME_BOB,
                event_id=ident(10 + day),
            )
        )
    rows.append(
        event_row(
            "context.env_var.store",
            at("2022-12-01", 14, 5),
            "bob",
            target=("context", "deploy"),
            payload={"name": "AWS_SECRET_ACCESS_KEY"},
            ip=HOME_BOB,
            event_id=ident(20),
        )
    )
    rows.append(
        event_row(
            "project.env_var.create",
            at("2022-11-20", 14),
            "bob",
            payload={"name": "NPM_TOKEN"},
            ip=HOME_BOB,
            event_id=ident(21),
        )
    )
    rows.append(
        event_row(
            "project.env_var.delete",
            at("2022-12-02", 14),
            "bob",
            payload={"name": "NPM_TOKEN"},
            ip=HOME_BOB,
            event_id=ident(22),
        )
    )
    # the window
    rows.append(
        event_row(
            "user.logged_in",
            at("2022-12-28", 3),
            "alice",
            target=("user", "alice"),
            ip=EVIL,
            event_id=ident(100),
        )
    )
    mallory = event_row(
        "project.ssh_key.create", at("2022-12-29", 4, 10), "mallory", ip=EVIL, event_id=ident(101)
    )
    rows.append(mallory)
    rows.append(mallory)  # a duplicate delivery
    rows.append(
        event_row(
            "context.env_var.store",
            at("2022-12-22", 14),
            "bob",
            target=("context", "deploy"),
            payload={"name": "GITHUB_TOKEN"},
            ip=HOME_BOB,
            event_id=ident(102),
        )
    )
    rows.append(
        event_row(
            "schedule.create",
            at("2022-12-23", 14, 30),
            "bob",
            ip=HOME_BOB,
            success=False,
            event_id=ident(103),
        )
    )
    bad = event_row("user.logged_in", at("2022-12-24", 9), "bob", event_id=ident(104))
    bad[4] = "2022-12-24 09:00"  # not ISO-8601: malformed
    rows.append(bad)
    # after the window
    rows.append(
        event_row("user.logged_in", at("2023-01-06", 2), "bob", ip=EVIL, event_id=ident(105))
    )
    path = tmp_path / "export.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    bad_line = 1 + rows.index(bad) + 1
    return path, bad_line


EXPECTED_FINDINGS = {
    ("heuristic.new_ip", "high", "alice", (ident(100),)),
    ("persistence.ssh_key", "high", "mallory", (ident(101),)),
    ("failed.action", "medium", "bob", (ident(103),)),
    ("heuristic.new_actor", "medium", "mallory", (ident(101),)),
    ("heuristic.unusual_hour", "medium", "alice", (ident(100),)),
    ("schedule.change", "medium", "bob", (ident(103),)),
    ("secrets.change", "medium", "bob", (ident(102),)),
    ("access.login", "low", "alice", (ident(100),)),
}


def hunt(path, *extra):
    proc = cli_here(
        "audit",
        "hunt",
        str(path),
        "--since",
        "2022-12-21",
        "--until",
        "2023-01-05",
        "--format",
        "jsonl",
        *extra,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    return proc, lines[0], lines[1:]


def test_hunt_finds_exactly_the_planted_incident(incident):
    path, bad_line = incident
    proc, summary, findings = hunt(path)
    assert proc.returncode == 0, proc.stderr
    got = {(f["rule"], f["severity"], f["actor"], tuple(f["event_ids"])) for f in findings}
    assert got == EXPECTED_FINDINGS
    assert summary["duplicates"] == 1 and summary["malformed"] == 1
    assert f"malformed {path}:{bad_line}: occurred_at" in proc.stderr
    assert [f["severity"] for f in findings] == sorted(
        [f["severity"] for f in findings], key=["critical", "high", "medium", "low"].index
    )


def test_filters_and_fail_on(incident):
    path, _ = incident
    proc, _, findings = hunt(path, "--actor", "mallory", "--fail-on", "high")
    assert proc.returncode == 1
    assert {f["rule"] for f in findings} == {"persistence.ssh_key", "heuristic.new_actor"}
    proc, _, findings = hunt(path, "--actor", "bob", "--fail-on", "high")
    assert proc.returncode == 0 and {f["actor"] for f in findings} == {"bob"}


def test_operator_rules_extend_and_replace_defaults(incident, tmp_path):
    path, _ = incident
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rule]]\nid = "access.login"\nseverity = "critical"\n'
        'actions = ["user.logged_in"]\nwhy = "no logins expected during freeze"\n'
    )
    proc, _, findings = hunt(path, "--rules", str(rules), "--fail-on", "critical")
    assert proc.returncode == 1
    assert [f["rule"] for f in findings if f["severity"] == "critical"] == ["access.login"]


def test_secrets_inventory(incident):
    path, _ = incident
    proc = cli_here(
        "audit", "secrets", str(path), "--rotate-before", "2023-01-04", "--format", "jsonl"
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()][1:]
    got = {
        (r["location"], r["name"], r["rotate"], r["severity"], r["last_stored"][:10]) for r in rows
    }
    assert got == {
        ("context:deploy", "AWS_SECRET_ACCESS_KEY", "yes", "critical", "2022-12-01"),
        ("context:deploy", "GITHUB_TOKEN", "yes", "high", "2022-12-22"),
        ("project:gh/acme/api", "NPM_TOKEN", "no (deleted)", "high", "2022-11-20"),
    }


@pytest.mark.parametrize("fmt", ["table", "csv", "md"])
def test_other_formats_carry_the_findings(incident, fmt):
    path, _ = incident
    proc = cli_here("audit", "hunt", str(path), "--since", "2022-12-21", "--format", fmt)
    assert proc.returncode == 0
    assert "persistence.ssh_key" in proc.stdout and ident(101) in proc.stdout


def test_generated_export_counts_match_the_generator(tmp_path):
    path = tmp_path / "big.csv"
    truth = generate(path, 20_000, seed=3)
    stats = IngestStats()
    events = list(read_exports([path], stats))
    assert (stats.rows, stats.events, stats.duplicates, len(stats.malformed)) == (
        truth.rows,
        truth.unique,
        truth.duplicates,
        truth.malformed,
    )
    by_action: dict[str, int] = {}
    for event in events:
        by_action[event.action] = by_action.get(event.action, 0) + 1
    assert by_action == truth.actions
    assert truth.duplicates > 0 and truth.malformed > 0


def test_several_windows_merge_into_one_timeline(incident, tmp_path):
    path, _ = incident
    lines = path.read_text().splitlines(keepends=True)
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("".join(lines[:12]))
    second.write_text(lines[0] + "".join(lines[12:]))
    proc = cli_here(
        "audit",
        "hunt",
        str(first),
        str(second),
        "--since",
        "2022-12-21",
        "--until",
        "2023-01-05",
        "--format",
        "jsonl",
    )
    findings = [json.loads(line) for line in proc.stdout.splitlines()][1:]
    assert {
        (f["rule"], f["severity"], f["actor"], tuple(f["event_ids"])) for f in findings
    } == EXPECTED_FINDINGS


def test_a_file_that_is_not_an_audit_export_is_refused(tmp_path):
    other = tmp_path / "users.csv"
    other.write_text("name,email\nalice,a@example.com\n")
    with pytest.raises(NotAnAuditExport, match="missing columns: action"):
        list(read_exports([other], IngestStats()))
    proc = cli_here("audit", "hunt", str(other))
    assert proc.returncode == 2 and "not a CircleCI audit-log export" in proc.stderr


def test_findings_do_not_depend_on_the_order_rows_come_in(incident, tmp_path):
    """Reversed, every window event comes before the baseline that decides whether it is a
    finding; the hunt must still find exactly the same (counts, times and ids included)."""
    path, _ = incident
    with open(path, newline="") as handle:
        header, *rows = list(csv.reader(handle))
    for name, reordered in (("reversed", rows[::-1]), ("interleaved", rows[1::2] + rows[::2])):
        other = tmp_path / f"{name}.csv"
        with open(other, "w", newline="") as handle:
            csv.writer(handle).writerows([header, *reordered])
        _, _, expected = hunt(path)
        _, _, findings = hunt(other)
        assert sorted(map(json.dumps, findings)) == sorted(map(json.dumps, expected)), name


def test_a_gzipped_export_reads_like_the_plain_one(incident, tmp_path):
    import gzip

    path, _ = incident
    packed = tmp_path / "export.csv.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    plain = cli_here("audit", "hunt", str(path), "--since", "2022-12-21", "--format", "jsonl")
    zipped = cli_here("audit", "hunt", str(packed), "--since", "2022-12-21", "--format", "jsonl")
    assert plain.returncode == zipped.returncode and plain.returncode in (0, 1), zipped.stderr
    strip = lambda out: [ln for ln in out.splitlines() if '"type": "summary"' not in ln]  # noqa: E731
    assert strip(plain.stdout) == strip(zipped.stdout) and strip(plain.stdout)
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(gzip.compress(path.read_bytes())[:200])
    proc = cli_here("audit", "hunt", str(broken))
    assert (
        proc.returncode == 2
        and "cannot decompress" in proc.stderr
        and "Traceback" not in proc.stderr
    )


def test_a_window_or_filter_that_cannot_match_is_an_error_not_an_empty_report(incident):
    path, _ = incident
    inverted = cli_here(
        "audit", "hunt", str(path), "--since", "2023-01-05", "--until", "2022-12-21"
    )
    assert inverted.returncode == 2 and "is not before --until" in inverted.stderr
    for option, value in (("--actor", "nobody-at-all"), ("--project", "gh/acme/no-such-repo")):
        proc = cli_here("audit", "hunt", str(path), "--since", "2022-12-21", option, value)
        assert proc.returncode == 2, proc.stderr
        assert f"{option} {value}: matches no event in the window" in proc.stderr
    plain = cli_here("audit", "hunt", str(path), "--format", "jsonl")
    assert "only the rules ran" in plain.stderr
    assert json.loads(plain.stdout.splitlines()[0])["heuristics"] == "off (no --since)"


def test_a_secret_exposed_in_the_window_must_be_rotated_though_deleted_later(tmp_path):
    from datetime import UTC, datetime

    from cci_harden.audit.events import COLUMNS
    from cci_harden.audit.generate import event_row

    def variable(action: str, when: tuple[int, int, int], actor: str, name: str) -> list[str]:
        return event_row(
            f"context.env_var.{action}",
            datetime(*when, 9, tzinfo=UTC),
            actor,
            target=("context", "deploy"),
            payload={"name": name},
        )

    rows = [
        variable("store", (2022, 12, 1), "alice", "AWS_SECRET_ACCESS_KEY"),
        variable("delete", (2022, 12, 28), "mallory", "AWS_SECRET_ACCESS_KEY"),
        variable("store", (2022, 11, 1), "alice", "OLD_TOKEN"),
        variable("delete", (2022, 11, 20), "alice", "OLD_TOKEN"),
    ]
    export = tmp_path / "secrets.csv"
    with open(export, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    proc = cli_here(
        "audit",
        "secrets",
        str(export),
        "--since",
        "2022-12-21",
        "--rotate-before",
        "2023-01-04",
        "--format",
        "jsonl",
    )
    assert proc.returncode == 0, proc.stderr
    got = {r["name"]: r for r in map(json.loads, proc.stdout.splitlines()[1:])}
    assert got["AWS_SECRET_ACCESS_KEY"]["rotate"] == "yes (deleted 2022-12-28 by mallory)"
    assert got["AWS_SECRET_ACCESS_KEY"]["deleted_by"] == "mallory"
    assert got["OLD_TOKEN"]["rotate"] == "no (deleted before the window)"


def test_progress_says_how_much_is_read_and_how_long_is_left(tmp_path, monkeypatch, capsys):
    from cci_harden.audit import ingest
    from cci_harden.audit.command import _progress
    from cci_harden.audit.generate import generate
    from cci_harden.audit.ingest import IngestStats, read_export_batches

    path = tmp_path / "big.csv"
    generate(path, 20_000, seed=3)
    monkeypatch.setattr(ingest, "CHUNK_BYTES", 256 * 1024)  # many ranges: progress moves
    stats = IngestStats()
    done = [stats.bytes_done for _ in read_export_batches([path], stats, jobs=2)]
    done.append(stats.bytes_done)
    assert done == sorted(done) and done[-1] == path.stat().st_size == stats.bytes_total
    assert len(set(done)) > 3  # it moved along, not only at the end
    stats.bytes_done = stats.bytes_total // 4
    _progress(stats)
    line = capsys.readouterr().err
    assert "25% of" in line and "s left" in line


def test_findings_roll_up_per_actor_and_why_is_never_cut(incident):
    path, _ = incident
    proc, summary, rest = hunt(path, "--group-by", "actor")
    assert proc.returncode == 0, proc.stderr
    lines = [summary, *rest]
    rows = [r for r in lines if r["type"] == "actor"]
    assert rows and lines[0]["actors"] == len(rows) == len({r["actor"] for r in rows})
    order = ["critical", "high", "medium", "low", "info"]
    assert [order.index(r["severity"]) for r in rows] == sorted(
        order.index(r["severity"]) for r in rows
    )
    assert all(r["findings"] >= 1 and r["events"] >= r["findings"] and r["rules"] for r in rows)
    table = cli_here("audit", "hunt", str(path), "--since", "2022-12-21").stdout
    assert (
        "was not used by this actor before the window" in table
    )  # the whole why, address included


def test_each_finding_names_what_was_touched_and_from_where(incident):
    path, _ = incident
    proc, _, findings = hunt(path)
    assert findings and all(f["targets"] for f in findings)
    new_ip = [f for f in findings if f["rule"] == "heuristic.new_ip"]
    assert new_ip
    for finding in new_ip:
        address = finding["why"].split()[1]
        assert finding["addresses"] == [address]
    assert any(
        t.startswith("project:") or t.startswith("context:") for f in findings for t in f["targets"]
    )


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "md"])
def test_a_report_is_written_a_finding_at_a_time(fmt):
    """A long export's findings hold over a million event ids: JSON lines, CSV and Markdown
    spell out one finding's ids, write its line, and only then take the next finding."""
    from cci_harden.audit.command import FINDING_COLUMNS
    from cci_harden.audit.output import render, render_lines

    taken = []

    def findings():
        for n in range(3):
            taken.append(n)
            yield {c: f"{c}-{n}" for c in FINDING_COLUMNS} | {"event_ids": [f"id-{n}"] * 1000}

    lines = render_lines("finding", findings(), FINDING_COLUMNS, fmt, {"rows": 1})
    head = [next(lines) for _ in range({"jsonl": 2, "csv": 2, "md": 4}[fmt])]
    assert taken == [0] and "id-0" in head[-1]
    assert "".join(head) + "".join(lines) == render(
        "finding", list(findings()), FINDING_COLUMNS, fmt, {"rows": 1}
    )
