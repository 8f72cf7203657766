"""Turn a Debian 12 host into a hardened CircleCI Server Nomad client (other hosts are refused).

    pyinfra inventories/prod deploys/nomad.py

Every operation belongs to a control of the catalogue (its id is in the operation name), and
``cci-harden verify inventories/prod`` checks the same controls.
"""

from cci_harden.apply.deploy import apply_profile

apply_profile("nomad")
