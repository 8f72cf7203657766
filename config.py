"""pyinfra reads this file (from the checkout's top) before the inventory: a deploy to no host
is an error, never a silent success (cci_harden/apply/guard.py)."""

from cci_harden.apply.guard import refuse_empty_inventory

refuse_empty_inventory()
