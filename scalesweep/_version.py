"""The package version: read by ``pyproject.toml`` (setuptools ``dynamic``) and by every module that records it."""

__version__ = "0.1.0"
