"""nucleus.resolve: data-driven cases (tests/data/resolve/*.json), the search bound, and properties
checked against a brute-force solver on small random graphs. No timing asserts: the speed goal is
measured by benchmarks/resolve_bench.py."""

from __future__ import annotations

import importlib.util
import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nucleus.errors import ResolutionError
from nucleus.resolve import Candidate, Root, resolve, resolve_detailed
from nucleus.versions import satisfies

CASES = Path(__file__).parent / "data" / "resolve"
REPO = Path(__file__).resolve().parent.parent

Index = dict[str, list[Candidate]]


def load_case(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def build(case: Mapping[str, Any]) -> tuple[list[Root], Index]:
    """The case's roots and candidates as the resolver takes them."""
    index = {
        name: [Candidate(name, c["version"], c.get("dependencies", {}), c.get("origin", "")) for c in listed]
        for name, listed in case["candidates"].items()
    }
    roots = [Root(r["name"], r["requirement"], r.get("requester", "the deployment")) for r in case["roots"]]
    return roots, index


def pins(chosen: Sequence[Candidate]) -> list[str]:
    return [f"{c.name} {c.version}" for c in chosen]


@pytest.mark.parametrize("path", sorted(CASES.glob("*.json")), ids=lambda p: p.stem)
def test_case(path: Path) -> None:
    case = load_case(path)
    roots, index = build(case)
    expect = case["expect"]
    run = lambda: resolve(roots, index, case.get("preferred", {}), case.get("looked_in", ""))  # noqa: E731
    if "error" in expect:
        with pytest.raises(ResolutionError) as caught:
            run()
        error = caught.value
        assert error.reason == expect["error"], str(error)
        if "lines" in expect:
            assert error.lines() == expect["lines"]
        for phrase in expect.get("contains", []):
            assert phrase in str(error)
        assert "Traceback" not in str(error)
    else:
        chosen = run()
        assert pins(chosen) == expect["chosen"]
        if "origins" in expect:
            assert [c.origin for c in chosen] == expect["origins"]
        assert_valid(roots, chosen)
        assert pins(run()) == expect["chosen"]  # deterministic


def test_there_are_cases_for_every_rule() -> None:
    names = {p.stem for p in CASES.glob("*.json")}
    for needed in [
        "simple-chain", "diamond", "preferred-kept", "preferred-upgraded", "prerelease-not-asked",
        "prerelease-when-asked", "backtracking-needed", "conflict-two-requesters", "missing-dependency",
        "cycle", "order-ties-by-name",
    ]:  # fmt: skip
        assert needed in names


def assert_valid(roots: Sequence[Root], chosen: Sequence[Candidate]) -> None:
    """Every requirement holds, each name once, and dependencies come before their dependents."""
    position = {c.name: i for i, c in enumerate(chosen)}
    assert len(position) == len(chosen)
    for root in roots:
        assert satisfies(chosen[position[root.name]].version, root.requirement)
    for i, candidate in enumerate(chosen):
        for name, text in candidate.dependencies.items():
            assert position[name] < i, f"{name} after {candidate.name}"
            assert satisfies(chosen[position[name]].version, text)


# -- the bound on pathological searches ----------------------------------------------------------------


def pigeonhole(holes: int) -> tuple[list[Root], Index]:
    """holes+1 pigeons, each wanting a hole to itself: unsatisfiable, and exponential to refute.

    Pigeon P<i> version <h>.0.0 sits in hole H<h> and requires H<h> to be exactly version <i+1>.0.0,
    so two pigeons in one hole clash.
    """
    index: Index = {}
    for i in range(holes + 1):
        index[f"P{i}"] = [Candidate(f"P{i}", f"{h}.0.0", {f"H{h}": f"={i + 1}.0.0"}) for h in range(1, holes + 1)]
    for h in range(1, holes + 1):
        index[f"H{h}"] = [Candidate(f"H{h}", f"{i + 1}.0.0") for i in range(holes + 1)]
    return [Root(f"P{i}", "*") for i in range(holes + 1)], index


def test_a_pathological_search_ends_with_too_deep() -> None:
    roots, index = pigeonhole(9)
    with pytest.raises(ResolutionError) as caught:
        resolve(roots, index, max_attempts=500)
    assert caught.value.reason == "too-deep"
    assert "gave up after trying 500 candidates" in caught.value.lines()[0]
    assert any("the last conflict: cannot choose a version of H" in line for line in caught.value.lines())


def test_a_small_pathological_search_is_refuted_within_the_default_bound() -> None:
    roots, index = pigeonhole(3)
    with pytest.raises(ResolutionError) as caught:
        resolve(roots, index)
    assert caught.value.reason == "conflict"
    assert caught.value.lines()[0] == "cannot choose a version of P0:"
    assert len(caught.value.lines()) < 60  # nested explanations are capped


def test_statistics_are_reported() -> None:
    roots, index = build(load_case(CASES / "backtracking-needed.json"))
    result = resolve_detailed(roots, index)
    assert pins(result.chosen) == ["C 1.2.4", "A 1.5.0", "B 1.0.0"]
    assert result.backtracks >= 1 and result.attempts > len(result.chosen)


def test_the_benchmark_graph_needs_backtracking_and_resolves() -> None:
    """The 500 x 5 benchmark graph: greedy newest-first fails, the resolver finds a valid answer."""
    spec = importlib.util.spec_from_file_location("resolve_bench", REPO / "benchmarks" / "resolve_bench.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    roots, index, planted = bench.generate()
    assert not bench.greedy_succeeds(roots, index)
    result = resolve_detailed(roots, index)
    assert len(result.chosen) == 500 and result.backtracks > 0
    assert_valid(roots, result.chosen)
    assert all(any(c.version == v for c in index[n]) for n, v in planted.items())


# -- properties against a brute-force solver -------------------------------------------------------------

RANGES = ["*", "^1.0.0", "^2.0.0", "~1.1.0", ">=1.1.0 <2.0.0", "1.x", ">=2.0.0", "<1.1.0", "1.0.0", "2.1.0",
          "^1.1.0-beta", "1.1.0 || 2.0.0"]  # fmt: skip
VERSIONS = ["1.0.0", "1.1.0", "1.1.0-beta", "2.0.0", "2.1.0"]
NAMES = "ABCDE"


@st.composite
def graphs(draw: st.DrawFn) -> tuple[list[Root], Index]:
    """Up to 5 components with up to 3 versions, each requiring up to 2 others (or itself, rarely)."""
    count = draw(st.integers(1, 5))
    names = NAMES[:count]
    index: Index = {}
    for name in names:
        versions = draw(st.lists(st.sampled_from(VERSIONS), min_size=0, max_size=3, unique=True))
        index[name] = []
        for version in versions:
            needs = draw(st.lists(st.sampled_from(NAMES + "F"), max_size=2, unique=True))
            index[name].append(Candidate(name, version, {n: draw(st.sampled_from(RANGES)) for n in needs}))
    root_names = draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True))
    return [Root(n, draw(st.sampled_from(RANGES))) for n in root_names], index


def brute_force(roots: Sequence[Root], index: Index) -> list[dict[str, Candidate]]:
    """Every acyclic selection, with nothing unneeded, that satisfies every requirement."""
    names = sorted(index)
    found = []
    for combo in itertools.product(*[[None, *index[n]] for n in names]):
        chosen = {n: c for n, c in zip(names, combo, strict=True) if c is not None}
        if _satisfied(roots, chosen) and _needed(roots, chosen) == set(chosen) and _acyclic(chosen):
            found.append(chosen)
    return found


def _satisfied(roots: Sequence[Root], chosen: Mapping[str, Candidate]) -> bool:
    wanted = [(r.name, r.requirement) for r in roots]
    wanted += [pair for c in chosen.values() for pair in c.dependencies.items()]
    return all(name in chosen and satisfies(chosen[name].version, text) for name, text in wanted)


def _needed(roots: Sequence[Root], chosen: Mapping[str, Candidate]) -> set[str]:
    needed: set[str] = set()
    stack = [r.name for r in roots]
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(chosen[name].dependencies)
    return needed


def _acyclic(chosen: Mapping[str, Candidate]) -> bool:
    done: set[str] = set()

    def visit(name: str, path: frozenset[str]) -> bool:
        if name in path:
            return False
        if name in done:
            return True
        ok = all(visit(d, path | {name}) for d in chosen[name].dependencies)
        done.add(name)
        return ok

    return all(visit(name, frozenset()) for name in chosen)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_finds_a_solution_exactly_when_one_exists(graph: tuple[list[Root], Index]) -> None:
    roots, index = graph
    solutions = brute_force(roots, index)
    try:
        chosen = resolve(roots, index)
    except ResolutionError as error:
        assert not solutions, f"missed a solution: {error}"
        assert error.reason in ("conflict", "missing", "cycle")
        assert error.lines() and all(isinstance(line, str) for line in error.lines())
        return
    assert_valid(roots, chosen)
    assert {c.name: c for c in chosen} in solutions
    assert resolve(roots, index) == chosen  # deterministic


@settings(max_examples=150, deadline=None)
@given(graphs(), st.data())
def test_every_solution_is_kept_when_it_is_what_is_deployed(
    graph: tuple[list[Root], Index], data: st.DataObject
) -> None:
    """Preferring the versions of any valid answer (what is deployed now) gives back exactly that answer:
    a deployment re-resolved against itself does not move, whichever of the answers it is."""
    roots, index = graph
    solutions = brute_force(roots, index)
    if not solutions:
        return
    deployed = data.draw(st.sampled_from(solutions))
    chosen = resolve(roots, index, preferred={name: c.version for name, c in deployed.items()})
    assert {c.name: c for c in chosen} == deployed
