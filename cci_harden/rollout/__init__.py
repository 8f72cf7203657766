"""Changing a fleet that runs builds: batches with a canary, drains before anything that would
kill a build, a cap on hosts out of service and failure budgets (``cci-harden rollout``).

It decides from the same per-host snapshot and plan as the deploy and verify
(``model.disruption``), runs the deploy itself as pyinfra (one child process per step, never
pyinfra's own ``--fail-percent``), and talks to each host's Nomad agent over SSH.
"""
