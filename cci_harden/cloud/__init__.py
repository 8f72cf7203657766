"""Cloud renders: IAM policies and their lint, artifact serving, the render command."""
