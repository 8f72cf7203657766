"""The OS baseline alone: sshd, kernel, modules, accounts, files, audit, maintenance.

    pyinfra inventories/prod deploys/baseline.py
    cci-harden verify --profile baseline inventories/prod

``deploys/nomad.py`` applies the same controls as part of a Nomad client.
"""

from cci_harden.catalogue import BASELINE
from cci_harden.deploy import apply_controls

apply_controls(BASELINE)
