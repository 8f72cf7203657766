"""Typed settings and the material they name (keys, certificates), read on this machine."""
