"""Text from outside (audit data, object keys) made safe to print on a terminal or in a report."""

from __future__ import annotations

import re

# Characters that would act on a terminal or a reader instead of being shown: C0 and C1 controls
# (escape sequences, carriage returns, newlines) and the bidirectional overrides.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with every unsafe character spelled out as ``\\xNN`` or ``\\uNNNN``."""
    return _UNSAFE.sub(
        lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text
    )
