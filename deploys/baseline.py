"""The OS baseline alone: sshd, kernel, modules, accounts, files, audit, maintenance.

    pyinfra inventories/prod deploys/baseline.py
    cci-harden verify --profile baseline inventories/prod

``deploys/nomad.py`` applies the same controls as part of a Nomad client.
"""

from cci_harden.apply.deploy import apply_profile

apply_profile("baseline")
