"""Serve CircleCI artifacts through nginx with the seed's content-type rules.

    pyinfra inventories/artifacts deploys/artifacts.py
    cci-harden verify --profile artifacts inventories/artifacts

For operators who put their own nginx in front of the object store (settings ``[artifacts]``).
"""

from cci_harden.catalogue import ARTIFACT_SERVER
from cci_harden.deploy import apply_controls

apply_controls(ARTIFACT_SERVER)
