"""The one exception every input gate raises: a user's mistake, already phrased as one line."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input, already phrased as one line: ``FILE:LINE: FIELD: what was wrong``."""
