"""YAML reading that remembers where each value came from, for one-line errors with file, line and field."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tokenfab.io.errors import InputError

_Loader: type[yaml.CSafeLoader] | type[yaml.SafeLoader]
try:  # libyaml: the same documents and marks, ten times faster than the pure-Python parser
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "InputError",
    "LocatedYaml",
    "format_loc",
    "load_located_yaml",
    "parse_located_yaml",
    "read_input_text",
]


@dataclass(frozen=True)
class LocatedYaml:
    """A parsed YAML document and the node tree it came from."""

    path: str
    data: Any
    root: yaml.Node | None

    def line_of(self, loc: Sequence[str | int]) -> int:
        """1-based line of the deepest node along `loc` that exists (1 when nothing matches)."""
        node = self.root
        line = node.start_mark.line + 1 if node is not None else 1
        for key in loc:
            child = _child(node, key)
            if child is None:
                break
            node = child
            line = node.start_mark.line + 1
        return line

    def error(self, loc: Sequence[str | int], message: str) -> InputError:
        """One line naming the file, the line (when the node tree is known) and the field."""
        where = f"{self.path}:{self.line_of(loc)}" if self.root is not None else self.path
        return InputError(f"{where}: {format_loc(loc)}: {message}")

    def validation_error(self, exc: ValidationError, prefix: Sequence[str | int] = ()) -> InputError:
        """The first pydantic error of `exc` as a one-line InputError."""
        first = exc.errors()[0]
        loc = [*prefix, *(part for part in first["loc"] if not _is_pydantic_tag(part))]
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown field"
        elif first["type"] == "missing":
            message = "required field is missing"
        return self.error(loc, message)


def _is_pydantic_tag(part: object) -> bool:
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def _child(node: yaml.Node | None, key: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == key:
                return value_node
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return node.value[key]
    return None


def format_loc(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


MAX_YAML_BYTES = 16 << 20
"""Largest YAML input (spec, workload, sweep, catalog) read [bytes]; the largest example is a few KB."""


def read_input_text(path: str | Path, max_bytes: int = MAX_YAML_BYTES) -> str:
    """The UTF-8 text of an input file; `InputError` (one line) when it is absent, unreadable, not text or
    larger than ``max_bytes`` (checked before reading it)."""
    path_text = str(path)
    try:
        size = Path(path).stat().st_size
        if size > max_bytes:
            raise InputError(f"{path_text}: {size:,} bytes; an input file has at most {max_bytes:,}")
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path_text}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path_text}: is a directory, not a file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path_text}: not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{path_text}: cannot read: {exc.strerror or exc}") from None


def load_located_yaml(path: str | Path) -> LocatedYaml:
    """Parse `path`; a syntax error becomes an InputError naming the file and line."""
    return parse_located_yaml(read_input_text(path, MAX_YAML_BYTES), str(path))


def parse_located_yaml(text: str, path_text: str, what: str = "YAML") -> LocatedYaml:
    """Compose `text` once (libyaml) and build its data from the same nodes, keeping every node's line."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise InputError(f"{path_text}:{line}: malformed {what}: {exc.problem or exc.context}") from None
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        raise InputError(f"{path_text}: malformed {what}: {exc}") from None
    finally:
        loader.dispose()
    return LocatedYaml(path=path_text, data=data, root=root)
