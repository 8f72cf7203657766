"""Reading a cloud API's answer with a size cap and the listing's deadline.

A per-read timeout alone lets an endpoint trickle a byte at a time for ever, and reading a body
whole lets it fill the memory of the machine that runs the deploy: the body is read a piece at a
time, each piece as soon as it arrives, and the read stops at either bound.
"""

from __future__ import annotations

import time

from ..model.errors import InventoryError

PIECE = 64 * 1024


def read_bounded(stream, limit: int, deadline: float, where: str) -> bytes:
    """The whole body of ``stream`` (anything with ``read1``), or InventoryError naming ``where``
    once it passes ``limit`` bytes or the monotonic ``deadline``."""
    pieces: list[bytes] = []
    size = 0
    while piece := stream.read1(PIECE):
        size += len(piece)
        if size > limit:
            raise InventoryError(f"inventory.source: {where} answered over {limit} bytes; refused")
        if time.monotonic() > deadline:
            raise InventoryError(f"inventory.source: {where} answered too slowly; stopped")
        pieces.append(piece)
    return b"".join(pieces)
