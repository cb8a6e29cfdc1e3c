"""YAML loading that remembers where every value came from.

PyYAML's composer gives nodes with start marks; we build plain dicts, lists
and strings from them, but dicts remember each key's line (`key_line`) and
strings remember their own line and column, so every later error can point
at `file:line`.
"""
from __future__ import annotations

import yaml

from generator.errors import SpecError


class LocMap(dict):
    """A YAML mapping: a dict plus the line of the mapping and of each key."""

    line: int
    key_lines: dict

    def key_line(self, key) -> int:
        return self.key_lines.get(key, self.line)


class LocList(list):
    line: int


class LocStr(str):
    """A YAML string scalar with its 1-based line and 0-based column."""

    line: int
    col: int


_scalars = yaml.SafeLoader("")  # only used for its scalar constructors


def _build(node: yaml.Node, file: str):
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out = LocMap()
        out.line, out.key_lines = line, {}
        for key_node, value_node in node.value:
            key = _build(key_node, file)
            if key in out:
                raise SpecError(file, key_node.start_mark.line + 1, str(key), "duplicate key")
            out[key] = _build(value_node, file)
            out.key_lines[key] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        out = LocList(_build(n, file) for n in node.value)
        out.line = line
        return out
    value = _scalars.construct_object(node, deep=True)
    if isinstance(value, str):
        value = LocStr(value)
        value.line, value.col = line, node.start_mark.column
    return value


def load_documents(text: str, file: str) -> list:
    """Every YAML document in `text` (files may hold several ops, split by ---)."""
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = str(e.problem or e)
        if "got '?'" in problem:  # `{type: Tensor?}`: a flow mapping reads '?' as YAML syntax
            problem += " (inside {...} write \"Tensor?\" in quotes, or use the block form `type: Tensor?`)"
        raise SpecError(file, (mark.line + 1) if mark else 1, "yaml", problem) from None
    return [_build(n, file) for n in nodes if n is not None]
