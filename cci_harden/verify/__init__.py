"""The verify stage: the catalogue's checks, run against hosts over SSH."""
