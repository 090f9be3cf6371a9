"""YAML for configs, loaded with alias expansion bounded and nesting limited.

PyYAML's ``safe_load`` is safe from code execution but not from size: a
"billion laughs" document (nine aliases of nine aliases ...) is a few hundred
bytes that expand to 10⁹ values when anything walks it, and 100,000 nested
``[`` overflow the parser's recursion. :func:`load_yaml` composes the node
graph first, counts what the aliases would expand to (shared nodes counted
once per use, memoised, so the count itself is linear) and refuses past
:data:`MAX_NODES`; nesting deeper than :data:`MAX_DEPTH` is refused by name.
Every failure is one :class:`~trainguard.errors.InputError` naming the file.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .errors import InputError

MAX_NODES = 100_000  # a large real config has a few thousand values
MAX_DEPTH = 100  # real configs nest 3-5 levels


def _expanded_size(root: Any) -> tuple[int, int]:
    """(values the document expands to, deepest nesting), without recursion, memoised by node."""
    import yaml

    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if key in size:
            continue
        kids: list[Any] = []
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                kids += [k, v]
        elif isinstance(node, yaml.SequenceNode):
            kids = list(node.value)
        if not done:
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in size)
            continue
        size[key] = 1 + sum(size.get(id(k), 1) for k in kids)
        depth[key] = 1 + max((depth.get(id(k), 1) for k in kids), default=0)
        if size[key] > MAX_NODES:  # stop early: the rest can only be bigger
            return size[key], depth[key]
    return size.get(id(root), 0), depth.get(id(root), 0)


def compose_yaml(text: str, path: str | Path) -> Any:
    """The YAML node graph of ``text`` (line numbers for lint), checked for size and depth; None when empty."""
    import yaml

    old = sys.getrecursionlimit()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise InputError(path, f"YAML too deeply nested (more than {old} levels); not a config") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InputError(path, f"{where}invalid YAML ({problem})") from None
    if node is None:
        return None
    n, deep = _expanded_size(node)
    if n > MAX_NODES:
        raise InputError(path, f"YAML aliases expand to more than {MAX_NODES:,} values (an alias bomb?); "
                               "a config needs no aliases nested this way")
    if deep > MAX_DEPTH:
        raise InputError(path, f"YAML too deeply nested ({deep} levels; a config has a handful)")
    return node


def load_yaml(text: str, path: str | Path) -> Any:
    """The Python value of the YAML ``text`` (safe types only), size- and depth-checked; see the module doc."""
    node = compose_yaml(text, path)
    return construct(node, path)


def construct(node: Any, path: str | Path = "config") -> Any:
    """Python values from a node graph :func:`compose_yaml` checked (SafeLoader's constructors).

    A 5,000-digit integer makes Python's int() raise ValueError (its
    integer-string limit): that is one InputError naming the line, too.
    """
    import yaml

    if node is None:
        return None
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node)
    except ValueError as e:
        raise InputError(path, f"{_line_of_long_number(node)}a number out of range ({str(e).split(';')[0]})") from None
    except yaml.YAMLError as e:
        raise InputError(path, f"invalid YAML ({getattr(e, 'problem', None) or str(e).splitlines()[0]})") from None
    finally:
        loader.dispose()


def _line_of_long_number(root: Any) -> str:
    """``line N: `` of the first scalar with more than 40 digits, found without recursion; '' if none."""
    import yaml

    stack = [root]
    seen: set[int] = set()
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if isinstance(n, yaml.ScalarNode):
            if sum(c.isdigit() for c in str(n.value)) > 40:
                return f"line {n.start_mark.line + 1}: "
        elif isinstance(n, yaml.MappingNode):
            stack.extend(x for kv in n.value for x in kv)
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
    return ""


__all__ = ["MAX_DEPTH", "MAX_NODES", "compose_yaml", "construct", "load_yaml"]
