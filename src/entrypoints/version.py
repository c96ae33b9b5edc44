"""The installed version of chatcore (the distribution's metadata, not a constant)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def chatcore_version() -> str:
    """``0.1.0`` and the like; ``0.0.0`` when run from a tree that is not installed."""
    try:
        return version("chatcore")
    except PackageNotFoundError:
        return "0.0.0"
