"""Reading YAML descriptor files: a key written twice is an error, syntax errors give the
line and column, and every error is a ``DescriptorError`` prefixed with the file name."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mano.errors import DescriptorError


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a descriptor must not."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:          # an unhashable key: PyYAML reports it below
            continue
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {first})",
                key_node.start_mark)
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _construct_mapping)


def read_yaml(path) -> tuple[Any, str]:
    """The document of one YAML file and the file's name (the prefix of its errors)."""
    p = Path(path)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise DescriptorError(f"{p}: cannot read: {reason}") from None
    return parse_yaml(text, p.name), p.name


def parse_yaml(text: str, name: str) -> Any:
    """The document in ``text``; ``name`` prefixes every error (``DescriptorError``)."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        raise DescriptorError(f"{name}: {where}invalid YAML: {problem}"
                              + (f" ({context})" if context else "")) from None
    except RecursionError:
        raise DescriptorError(f"{name}: invalid YAML: nested too deeply") from None
