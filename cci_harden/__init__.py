"""cci-harden: install, harden and verify CircleCI Server Nomad clients."""

try:  # written at install from the newest release tag (pyproject.toml, setuptools-scm)
    from ._version import __version__ as __version__
except ImportError:  # a source tree never installed: the installed metadata, if any
    from importlib.metadata import PackageNotFoundError, version

    try:
        __version__ = version("cci-harden")
    except PackageNotFoundError:
        __version__ = "0+unknown"
