"""Turn a Debian 12 / Ubuntu 22.04 host into a hardened CircleCI Server Nomad client.

    pyinfra inventories/prod deploys/nomad.py

Every operation belongs to a control of the catalogue (its id is in the operation name), and
``cci-harden verify inventories/prod`` checks the same controls.
"""

from cci_harden.apply.deploy import apply_profile

apply_profile("nomad")
