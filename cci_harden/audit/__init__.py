"""CircleCI audit-log ingest and incident hunting (``cci-harden audit``)."""
