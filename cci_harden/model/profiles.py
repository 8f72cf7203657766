"""The deploy profiles by name: spelled once, for every command's choices (the catalogue maps
each name to its controls, and checks that it maps exactly these)."""

PROFILE_NAMES = ("nomad", "baseline", "artifacts")
DEFAULT_PROFILE = "nomad"
