"""The model: controls, resource kinds, the per-host snapshot and plan. No pyinfra here."""
