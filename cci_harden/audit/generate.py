"""Generate realistic audit-log exports: every event type, duplicate deliveries, malformed rows.

``generate`` writes a large random export and returns the truth about it (how many duplicates and
malformed rows it wrote), so tests and the benchmark can check ingest against it. The events are
built as they appear in CircleCI's export: nested fields as JSON blobs.
"""

from __future__ import annotations

import csv
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .events import COLUMNS, KNOWN_ACTIONS

SECRET_NAMES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "GITHUB_TOKEN",
    "NPM_TOKEN",
    "DOCKER_PASSWORD",
    "SLACK_WEBHOOK",
    "SENTRY_DSN",
    "GCLOUD_SERVICE_KEY",
    "DEPLOY_SSH_KEY",
    "DB_PASSWORD",
    "CODECOV_TOKEN",
    "BUILD_FLAVOR",
)


@dataclass
class Truth:
    rows: int = 0
    unique: int = 0
    duplicates: int = 0
    malformed: int = 0
    actions: dict[str, int] = field(default_factory=dict)


def event_row(
    action: str,
    when: datetime,
    actor: str,
    *,
    target: tuple[str, str] = ("project", "gh/acme/api"),
    payload: dict | None = None,
    ip: str = "",
    success: bool = True,
    event_id: str | None = None,
) -> list[str]:
    """One export row, fields in COLUMNS order."""
    fraction = f"{when.microsecond:06d}"
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + fraction[:3] + "Z"
    request = (
        {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, stamp + actor)), "ip_address": ip} if ip else None
    )
    return [
        action,
        json.dumps(
            {"id": str(uuid.uuid5(uuid.NAMESPACE_DNS, actor)), "type": "user", "name": actor}
        ),
        json.dumps(
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, target[1])),
                "type": target[0],
                "name": target[1],
            }
        ),
        json.dumps(payload or {}),
        stamp,
        json.dumps({"source": "generator"}),
        event_id or str(uuid.uuid4()),
        "1",
        json.dumps(
            {"id": "0b3e2c1a-0000-4000-8000-000000000001", "type": "account", "name": "acme"}
        ),
        "true" if success else "false",
        json.dumps(request) if request else "",
    ]


def numbered_row(n: int, when: datetime, **changes: str) -> list[str]:
    """A valid row with id number ``n`` (an env var created by one of seven users), with
    ``changes`` put over its columns: the building block of hand-made test exports."""
    row = event_row(
        "project.env_var.create",
        when,
        f"user{n % 7}",
        payload={"name": "NPM_TOKEN"},
        ip="198.51.100.9",
        event_id=f"00000000-0000-4000-8000-{n:012d}",
    )
    for column, value in changes.items():
        row[COLUMNS.index(column)] = value
    return row


_MALFORMED = (
    lambda row: row[:5],  # too few fields
    lambda row: [row[0].upper().replace(".", " "), *row[1:]],  # bad action
    lambda row: [*row[:6], "not-a-uuid", *row[7:]],  # bad id
    lambda row: [*row[:4], "21/12/2022 13:50", *row[5:]],  # bad time
    lambda row: [row[0], "{not json", *row[2:]],  # bad actor blob
    lambda row: [row[0], json.dumps({"name": "x"}), *row[2:]],  # actor without id/type
)


def generate(
    path: Path,
    rows: int,
    seed: int = 7,
    duplicate_rate: float = 0.01,
    malformed_rate: float = 0.001,
) -> Truth:
    rng = random.Random(seed)  # noqa: S311  (reproducible test data, not secrets)
    uuid_rng = random.Random(seed + 1)  # noqa: S311
    actions = sorted(KNOWN_ACTIONS)
    actors = [f"user{i:03d}" for i in range(200)]
    homes = {a: [f"198.51.100.{rng.randrange(1, 255)}" for _ in range(2)] for a in actors}
    projects = [f"gh/acme/repo{i:02d}" for i in range(50)]
    start = datetime(2022, 11, 1, tzinfo=UTC)
    truth = Truth()
    recent: list[list[str]] = []
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        while truth.rows < rows:
            roll = rng.random()
            if roll < duplicate_rate and recent:
                writer.writerow(rng.choice(recent))
                truth.duplicates += 1
            else:
                actor = rng.choice(actors)
                action = rng.choice(actions)
                when = start + timedelta(
                    seconds=rng.randrange(0, 70 * 86400), microseconds=rng.randrange(0, 10**6)
                )
                payload = {"name": rng.choice(SECRET_NAMES)} if "env_var" in action else {}
                row = event_row(
                    action,
                    when,
                    actor,
                    target=("project", rng.choice(projects)),
                    payload=payload,
                    ip=rng.choice(homes[actor]),
                    success=rng.random() > 0.02,
                    event_id=str(uuid.UUID(int=uuid_rng.getrandbits(128), version=4)),
                )
                if roll < duplicate_rate + malformed_rate:
                    writer.writerow(rng.choice(_MALFORMED)(row))
                    truth.malformed += 1
                else:
                    writer.writerow(row)
                    truth.unique += 1
                    truth.actions[action] = truth.actions.get(action, 0) + 1
                    recent.append(row)
                    if len(recent) > 64:
                        recent.pop(0)
            truth.rows += 1
    return truth
