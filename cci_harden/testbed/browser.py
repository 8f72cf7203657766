"""Headless Chromium for the report tests and benchmarks: Debian's package, no network.

Without the background-networking switches Chromium dials out at start-up (updates, sync,
safe browsing), which this machine's closed network refuses; the tests load only local files.
"""

from __future__ import annotations

HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
