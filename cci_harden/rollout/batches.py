"""Batch sizes and budgets: a count ("5") or a share of the fleet ("10%")."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

from ..model.errors import CciHardenError

T = TypeVar("T")


def amount(spec: str, total: int, at_least: int = 0) -> int:
    """``spec`` of ``total``: a share rounds up (10% of 3 hosts is 1), never below ``at_least``."""
    text = spec.strip()
    try:
        if text.endswith("%"):
            share = int(text[:-1])
            if not 0 <= share <= 100:
                raise ValueError
            value = math.ceil(total * share / 100)
        else:
            value = int(text)
            if value < 0:
                raise ValueError
    except ValueError:
        raise CciHardenError(f"{spec!r} is neither a count (5) nor a share (10%)") from None
    return max(value, at_least)


def parse_sizes(text: str) -> list[str]:
    """``--batches 1,10%,100%`` -> its entries, each checked."""
    sizes = [part.strip() for part in text.split(",") if part.strip()]
    if not sizes:
        raise CciHardenError("--batches is empty: give sizes such as 1,10%,100%")
    for size in sizes:
        if amount(size, 100) == 0:
            raise CciHardenError(f"--batches: a batch of {size!r} holds no host")
    return sizes


def split(items: Sequence[T], sizes: Sequence[str]) -> list[list[T]]:
    """Consecutive batches of ``items``, sized in turn by ``sizes`` (shares of the whole
    fleet); the last size repeats until every item has a batch."""
    batches: list[list[T]] = []
    position, index = 0, 0
    while position < len(items):
        size = amount(sizes[min(index, len(sizes) - 1)], len(items), at_least=1)
        batches.append(list(items[position : position + size]))
        position += size
        index += 1
    return batches
