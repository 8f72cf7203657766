"""The seccomp profile CircleCI's Nomad clients give Docker: Docker's default, plus user namespaces.

CircleCI appends one rule to Docker's default profile so that jobs can create user namespaces
(``clone``, ``setns``, ``unshare``; security page, Docker section). The default profile is vendored
(``data/docker-default-seccomp.json``, see ``data/README.md``) so the rendered bytes depend only on
this package's version, never on what a host happens to have installed.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources

PROFILE_PATH = "/etc/docker/seccomp/circleci.json"

# The seed's addition, exactly as the security page gives it.
CIRCLECI_ADDITION = {
    "comment": "Allow create user namespaces",
    "names": ["clone", "setns", "unshare"],
    "action": "SCMP_ACT_ALLOW",
    "args": [],
    "includes": {},
    "excludes": {},
}


@cache
def docker_default() -> dict:
    text = resources.files("cci_harden").joinpath("data/docker-default-seccomp.json").read_text()
    return json.loads(text)


def circleci_profile() -> dict:
    profile = copy.deepcopy(docker_default())
    profile["syscalls"].append(copy.deepcopy(CIRCLECI_ADDITION))
    return profile


@cache
def render_profile() -> str:
    """The profile as written to hosts: same inputs, same bytes."""
    return json.dumps(circleci_profile(), indent=2) + "\n"
