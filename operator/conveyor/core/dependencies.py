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
    """The jobs of a cycle through `start`, beginning with `start`; None if there is none.

    At most `limit` jobs are visited and each job's dependencies are read once, so a deep
    or huge graph costs bounded work; a cycle that only closes beyond the bound is not
    reported (the job then just waits, Blocked, for its dependencies).
    """
    path: list[str] = [start]
    on_path = {start}
    seen: set[str] = set()
    stack: list[tuple[Sequence[str], int]] = [(depends_on(start), 0)]
    visited = 1
    while stack:
        children, index = stack[-1]
        if index >= len(children):
            stack.pop()
            node = path.pop()
            on_path.discard(node)
            seen.add(node)
            continue
        stack[-1] = (children, index + 1)
        child = children[index]
        if child == start:
            return list(path)
        if child in on_path or child in seen:
            continue
        if visited >= limit:
            return None
        visited += 1
        stack.append((depends_on(child), 0))
        path.append(child)
        on_path.add(child)
    return None
