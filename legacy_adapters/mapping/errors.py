"""The error of the mapping package."""

from __future__ import annotations


class MappingError(ValueError):
    """The mapping file says something the engine cannot do; raised at load time, never per request."""
