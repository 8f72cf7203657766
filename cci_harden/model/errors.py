"""Errors an operator can act on.

Every error the CLI reports carries an exit code, so that wrappers and nightly pipelines can tell a
usage error from drift without parsing text.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_DRIFT = 1
EXIT_USAGE = 2


class CciHardenError(Exception):
    """An error with a message meant for the operator and an exit code."""

    exit_code = EXIT_USAGE


class SettingsError(CciHardenError):
    """Settings failed validation; raised before any host is contacted."""


class InventoryError(CciHardenError):
    """An inventory that cannot be used: missing, empty, or a --limit that matches nothing."""


class TestbedError(CciHardenError):
    """The local test bed could not be brought up or down."""

    __test__ = False  # not a pytest test class


class MissingProgramError(TestbedError):
    """A program the test bed needs is not installed; names the Debian package that provides it."""

    def __init__(self, program: str, package: str):
        super().__init__(
            f"'{program}' was not found on PATH; install it with: apt-get install {package}"
        )
        self.program = program
        self.package = package
