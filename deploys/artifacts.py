"""Serve CircleCI artifacts through nginx with CircleCI's content-type rules.

    pyinfra inventories/artifacts deploys/artifacts.py
    cci-harden verify --profile artifacts inventories/artifacts

For operators who put their own nginx in front of the object store (settings ``[artifacts]``).
"""

from cci_harden.apply.deploy import apply_profile

apply_profile("artifacts")
