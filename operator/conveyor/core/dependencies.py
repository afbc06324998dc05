"""Cycles in `dependsOn`, found before they become a silent deadlock.

A job whose dependencies lead back to itself would wait forever. The check
walks the dependency graph from the job (depth-first, bounded, since a
namespace may hold many jobs) and returns the cycle through the job, if any,
for the Blocked condition to name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


def find_cycle(
    start: str, depends_on: Callable[[str], Sequence[str]], *, limit: int = 10_000
) -> list[str] | None:
    """The jobs of a cycle through `start`, beginning with `start`; None if there is none."""
    path: list[str] = [start]
    on_path = {start}
    seen: set[str] = set()
    stack: list[tuple[str, int]] = [(start, 0)]
    while stack:
        node, index = stack[-1]
        children = depends_on(node)
        if index >= len(children) or len(seen) > limit:
            stack.pop()
            on_path.discard(node)
            path.pop()
            seen.add(node)
            continue
        stack[-1] = (node, index + 1)
        child = children[index]
        if child == start:
            return list(path)
        if child in on_path or child in seen:
            continue
        stack.append((child, 0))
        path.append(child)
        on_path.add(child)
    return None
