"""JSON reading that can name the line of a field, for one-line errors like a spec's (file, line, field).

The document is parsed by `json` (strict: no NaN or Infinity); only when an error needs a line is the text
composed again by libyaml (JSON is YAML), so the same `LocatedYaml` machinery names it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from tokenfab.io.errors import InputError
from tokenfab.io.yamlfile import LocatedYaml, parse_located_yaml, read_input_text


class LocatedJson:
    """A JSON document whose node tree (for lines) is built only when an error needs it: libyaml reads JSON,
    so errors come from the same `LocatedYaml` machinery as a spec's; without a tree they name no line."""

    def __init__(self, path: str, text: str, data: Any):
        self.path, self.text, self.data = path, text, data

    @cached_property
    def located(self) -> LocatedYaml:
        try:
            return parse_located_yaml(self.text, self.path, "JSON")
        except InputError:
            return LocatedYaml(self.path, self.data, None)

    def error(self, loc: Sequence[str | int], message: str) -> InputError:
        return self.located.error(loc, message)

    def validation_error(self, exc, prefix: Sequence[str | int] = ()) -> InputError:
        return self.located.validation_error(exc, prefix)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def load_json_located(path: str | Path) -> LocatedJson:
    """Parse a JSON file strictly (no NaN or Infinity); a syntax error names the file and line."""
    path_text = str(path)
    text = read_input_text(path)
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path_text}:{exc.lineno}: malformed JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{path_text}: malformed JSON: {exc}") from None
    return LocatedJson(path_text, text, data)
