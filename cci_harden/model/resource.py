"""The resource kind: one typed thing on a host, gathered, compared and (in ``apply``) converged.

Every kind says three things once:

- ``gather(resources)``: one read-only shell command that reports the state of every resource of
  the kind at once (it runs inside the per-host snapshot script, never on its own);
- ``parse(output)``: that command's output as typed state, keyed by ``Resource.key``;
- ``compare(state, info)``: the findings, each naming the resource.

How the deploy makes a resource so lives in ``cci_harden.apply.converge``, one function per kind,
and runs only for resources whose ``compare`` found something. A resource with no findings emits no
operation, so a converged host gets none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from .control import Finding
from .hostinfo import HostInfo
from .interruption import Interruption

REGISTRY: dict[str, type[Resource]] = {}


class NotGathered:
    """The snapshot holds nothing for this resource (a defect of the gather, never a pass)."""

    def __repr__(self) -> str:
        return "NOT_GATHERED"


NOT_GATHERED = NotGathered()


@dataclass(frozen=True)
class Resource:
    kind: ClassVar[str] = ""
    # The deploy may delete it when its control is dropped or switched off (our own files).
    removable: ClassVar[bool] = False
    # The deploy can bring it back; if False, the kind only reports (a stray listener).
    repairable: ClassVar[bool] = True
    # Fully shown only by a host with a kernel of its own: in a container the kernel's side is
    # reported "not verifiable" (and the deploy leaves it alone there).
    needs_kernel: ClassVar[bool] = False
    # Decided after every other control: what it reacts to is made later in the same run
    # (loaded audit watches on a directory the Nomad controls create).
    converges_last: ClassVar[bool] = False
    # What runs, not what is on disk (a loaded rule set, a live sysctl, the host's size), or what
    # belongs to one instance (its host key's certificate): an image bake leaves it to the
    # instance's first boot (model.plan, stage "image").
    runtime: ClassVar[bool] = False
    # What applying a difference costs a running build, in words (the docs' table; the
    # decision itself is ``interruption``)
    interrupts: ClassVar[str] = "nothing"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.kind:
            if cls.kind in REGISTRY:
                raise TypeError(f"resource kind {cls.kind} declared twice")
            REGISTRY[cls.kind] = cls

    @property
    def key(self) -> str:
        raise NotImplementedError

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.key}"

    # The systemd units a change of this resource starts or restarts: the deploy acts on units
    # once, after every file, in the order of all the plan's units (the same on every host).
    kind_units: ClassVar[tuple[str, ...]] = ()  # the same units for every resource of the kind

    @property
    def units(self) -> tuple[str, ...]:
        return self.kind_units

    def describe(self) -> str:
        """What the resource should be, in a few words (docs, `cci-harden controls`)."""
        return self.id

    @classmethod
    def gather(cls, resources: Sequence[Self]) -> str:
        """A read-only shell command reporting every one of ``resources``."""
        raise NotImplementedError

    @classmethod
    def parse(cls, output: str, resources: Sequence[Self]) -> dict[str, Any]:
        """``gather``'s output as state per key; every key of ``resources`` is present."""
        raise NotImplementedError

    def compare(self, state: Any, info: HostInfo) -> list[Finding]:
        raise NotImplementedError

    def interruption(self, state: Any) -> Interruption:
        """What applying this resource's difference costs a running build (``state``: its
        snapshot). Most kinds change nothing a build depends on."""
        return Interruption.NOTHING

    def reacts_to(self, state: Any, changed: set[str], installing: set[str]) -> str:
        """Why the deploy must converge this resource although its snapshot matched: something
        the same run changes (``changed``: paths written, ``installing``: packages installed)
        makes it differ. "" when nothing does."""
        return ""

    def finding(self, what: str, expected: str, found: str, verifiable: bool = True) -> Finding:
        return Finding(what, expected, found, verifiable, self.id)


def blocks(output: str) -> dict[str, list[str]]:
    """Output made of ``@@NAME`` header lines, each followed by its block -> NAME -> lines."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in output.splitlines():
        if line.startswith("@@"):
            current = found.setdefault(line[2:], [])
        else:
            current.append(line)
    return found
