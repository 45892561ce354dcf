"""The package version, written here only: setuptools reads it into the wheel's metadata (``pyproject.toml``,
``dynamic``) and every module that records a version imports it."""

__version__ = "0.1.0"
