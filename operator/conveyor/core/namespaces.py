"""Which namespaces an operator serves, from its `--namespace` values.

No value: every namespace. Each value is a plain name or a pattern in kopf's
syntax, and a namespace is served if it matches any of them. A pattern is
comma-separated globs (`*`, `?`, `[...]`) read left to right: the first glob
decides the initial match (a leading `!glob` implies a `*` before it), a
`!glob` excludes what it matches, and a later plain glob re-includes what an
exclusion took, if the first glob had matched it. So `team-*,!team-test`
serves `team-a` and not `team-test`, and `!kube-*` serves everything but the
`kube-` namespaces.

The operator's own watches and the benchmark (which refuses to run beside
another operator that would act on its namespaces) read namespaces by this
one rule.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

PATTERN_CHARACTERS = frozenset("*?[]!,")


def is_pattern(value: str) -> bool:
    """Whether a `--namespace` value is a pattern rather than one namespace's name."""
    return any(char in PATTERN_CHARACTERS for char in value)


def matches(namespace: str, pattern: str) -> bool:
    """Whether `namespace` matches one `--namespace` value."""
    globs = [glob.strip() for glob in pattern.split(",") if glob.strip()]
    if not globs or globs[0].startswith("!"):
        globs.insert(0, "*")
    first = fnmatch.fnmatchcase(namespace, globs[0])
    matched = first
    for glob in globs[1:]:
        if glob.startswith("!"):
            matched = matched and not fnmatch.fnmatchcase(namespace, glob[1:])
        else:
            matched = matched or (first and fnmatch.fnmatchcase(namespace, glob))
    return matched


def served(namespace: str, values: Sequence[str]) -> bool:
    """Whether an operator started with these `--namespace` values serves `namespace`."""
    return not values or any(matches(namespace, value) for value in values)
