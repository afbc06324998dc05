"""dependencies.find_cycle: cycles in dependsOn through the job being reconciled."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.core.dependencies import find_cycle


def graph(edges: dict[str, list[str]]):
    return lambda name: edges.get(name, [])


def test_no_dependencies():
    """A job without dependsOn is in no cycle."""
    assert find_cycle("a", graph({})) is None


def test_acyclic_diamond():
    """A diamond (a→b, a→c, b→d, c→d) has no cycle."""
    assert find_cycle("a", graph({"a": ["b", "c"], "b": ["d"], "c": ["d"]})) is None


def test_self_loop():
    """A self-dependency (which the CRD's CEL rule forbids) would still be found."""
    assert find_cycle("a", graph({"a": ["a"]})) == ["a"]


def test_two_cycle():
    """a→b→a is found, starting with a."""
    assert find_cycle("a", graph({"a": ["b"], "b": ["a"]})) == ["a", "b"]


def test_three_cycle():
    """a→b→c→a is found in order."""
    edges = {"a": ["x", "b"], "b": ["c"], "c": ["y", "a"], "x": ["y"]}
    assert find_cycle("a", graph(edges)) == ["a", "b", "c"]


def test_cycle_not_through_start():
    """A cycle among the dependencies that does not lead back to the job is not its cycle."""
    assert find_cycle("a", graph({"a": ["b"], "b": ["c"], "c": ["b"]})) is None


def test_missing_dependency():
    """A dependency that does not exist (no edges) ends the walk."""
    assert find_cycle("a", graph({"a": ["ghost"]})) is None


def test_big_graph_is_bounded():
    """An endless chain costs at most `limit` lookups and ends with None."""
    calls: list[str] = []

    def endless(name: str) -> list[str]:
        calls.append(name)
        return [f"j{int(name[1:]) + 1}"]

    assert find_cycle("j0", endless, limit=1000) is None
    assert len(calls) <= 1000


def test_wide_graph_reads_each_job_once():
    """Each job's dependencies are looked up at most once, however many edges reach it."""
    edges = {f"l{i}": [f"m{j}" for j in range(30)] for i in range(30)}
    edges["a"] = list(edges)
    calls: list[str] = []

    def lookup(name: str) -> list[str]:
        calls.append(name)
        return edges.get(name, [])

    assert find_cycle("a", lookup) is None
    assert len(calls) == len(set(calls)) == 1 + 30 + 30


def test_long_cycle_within_the_limit():
    """A cycle of 5000 jobs is found with the default limit."""
    n = 5000
    cycle = find_cycle("j0", lambda name: [f"j{(int(name[1:]) + 1) % n}"])
    assert cycle is not None
    assert len(cycle) == n


def reaches(edges: dict[str, list[str]], source: str, target: str) -> bool:
    todo, seen = list(edges.get(source, [])), set()
    while todo:
        node = todo.pop()
        if node == target:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(edges.get(node, []))
    return False


nodes = st.sampled_from("abcdefg")


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(nodes, st.lists(nodes, max_size=3), max_size=7))
def test_find_cycle_agrees_with_reachability(edges):
    """A cycle is reported exactly when the job reaches itself, and it is a real cycle."""
    cycle = find_cycle("a", graph(edges))
    assert (cycle is not None) == reaches(edges, "a", "a")
    if cycle is not None:
        assert cycle[0] == "a"
        assert len(set(cycle)) == len(cycle)
        for here, there in zip(cycle, [*cycle[1:], "a"], strict=True):
            assert there in edges.get(here, [])
