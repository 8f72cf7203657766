"""Artifact content types: the nginx site that enforces them and the S3 bucket audit."""
