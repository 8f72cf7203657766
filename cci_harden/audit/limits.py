"""Limits and defaults of the audit ingest, apart from it so the command line can name them
without loading the ingest (numpy, msgspec) for every other command."""

from __future__ import annotations

import os

ROW_LIMIT = 2**20  # bytes a row may take; past it the row is malformed


def default_jobs() -> int:
    return max(1, min(os.cpu_count() or 1, 8))
