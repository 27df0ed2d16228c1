"""Benchmark: resolve a generated graph of 500 components x 5 versions (goal: median <= 200 ms).

The graph is deterministic (a seeded random.Random) and realistic: carets, tildes, bounded ranges
(`>=1.2.0 <2.0.0`), x-ranges and open lower bounds; every version of a component depends on the same
components (as real components do), newer versions on newer dependencies. A solution is planted (every
requirement of the planted versions accepts the planted versions of its dependencies), but for a quarter
of the components the planted version is not the newest, and the newer ones require dependency versions
that clash with what others need: a greedy newest-first choice fails (checked below on every run), so
the resolver has to back out of choices.

Each run starts from cold caches (ranges and versions are parsed anew), as a deployment in a fresh
process would. Prints the median of several runs, the number of components resolved and the number of
backtracks; `--json` prints `{"name": "resolve-500x5", "median_ms": ..., "goal_ms": 200}` instead.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nucleus import versions
from nucleus.resolve import Candidate, Root, resolve_detailed

GOAL_MS = 200
SEED = 20261126

Triple = tuple[int, int, int]


def _version_list(rng: random.Random, count: int) -> list[Triple]:
    """`count` increasing versions: mostly patch and minor steps, now and then a new major."""
    major = rng.choice([0, 1, 1, 2, 3])
    current = (major, rng.randint(0, 3), rng.randint(0, 5))
    out = []
    for _ in range(count):
        out.append(current)
        step = rng.random()
        if step < 0.45:
            current = (current[0], current[1], current[2] + 1 + rng.randint(0, 2))
        elif step < 0.85:
            current = (current[0], current[1] + 1, 0)
        else:
            current = (current[0] + 1, 0, 0)
    return out


def _range_around(rng: random.Random, version: Triple) -> str:
    """A realistic range that includes `version`."""
    major, minor, patch = version
    kind = rng.choices(["caret", "tilde", "bounded", "x", "at-least"], [5, 2, 2, 1, 1])[0]
    if kind == "caret":
        return f"^{major}.{minor}.{patch}"
    if kind == "tilde":
        return f"~{major}.{minor}.{patch}"
    if kind == "bounded":
        return f">={major}.{minor}.{patch} <{major + 1}.0.0"
    if kind == "x":
        return f"{major}.{minor}.x" if major == 0 else f"{major}.x"
    return f">={major}.{minor}.{patch}"


def _text(version: Triple) -> str:
    return ".".join(str(number) for number in version)


def generate(
    seed: int = SEED, components: int = 500, per_component: int = 5, roots: int = 10, trap_share: float = 0.25
) -> tuple[list[Root], dict[str, list[Candidate]], dict[str, str]]:
    """The graph: roots, candidates by name, and the planted solution (name -> version)."""
    rng = random.Random(seed)
    names = [f"com.example.C{i:03d}" for i in range(components)]
    version_lists = [_version_list(rng, per_component) for _ in range(components)]
    planted = [
        per_component - 1 if rng.random() > trap_share else rng.randint(0, per_component - 2) for _ in range(components)
    ]
    dependencies: list[list[int]] = [[] for _ in range(components)]
    for child in range(roots, components):  # everyone below the roots has a parent: all 500 are needed
        dependencies[rng.randint(max(0, child - 25), child - 1)].append(child)
    for parent in range(components - 1):
        for _ in range(rng.randint(0, 3)):
            child = rng.randint(parent + 1, min(components - 1, parent + 40))
            if child not in dependencies[parent]:
                dependencies[parent].append(child)
    candidates: dict[str, list[Candidate]] = {}
    for i, name in enumerate(names):
        listed = []
        for index, version in enumerate(version_lists[i]):
            requires = {}
            for child in sorted(dependencies[i]):
                if index == planted[i]:
                    reference = planted[child]
                else:  # newer versions lean on newer dependencies, with some noise
                    drift = index - planted[i] + rng.choice([-1, 0, 0, 1])
                    reference = min(per_component - 1, max(0, planted[child] + drift))
                requires[names[child]] = _range_around(rng, version_lists[child][reference])
            listed.append(Candidate(name, _text(version), requires, origin="bench"))
        candidates[name] = listed
    root_list = [Root(names[i], _range_around(rng, version_lists[i][planted[i]])) for i in range(roots)]
    solution = {names[i]: _text(version_lists[i][planted[i]]) for i in range(components)}
    return root_list, candidates, solution


def greedy_succeeds(roots: Sequence[Root], candidates: Mapping[str, Sequence[Candidate]]) -> bool:
    """Newest-first without backtracking (what classic Greengrass does): does it find a solution?"""
    requirements: dict[str, list[versions.Range]] = {}
    chosen: dict[str, Candidate] = {}
    queue: deque[str] = deque()
    for root in roots:
        requirements.setdefault(root.name, []).append(versions.parse_range(root.requirement))
        queue.append(root.name)
    while queue:
        name = queue.popleft()
        ranges = requirements[name]
        if name in chosen:
            if not all(r.allows(versions.parse_version(chosen[name].version)) for r in ranges):
                return False
            continue
        fitting = [c for c in candidates[name] if all(r.allows(versions.parse_version(c.version)) for r in ranges)]
        if not fitting:
            return False
        pick = max(fitting, key=lambda c: versions.parse_version(c.version))
        chosen[name] = pick
        for dependency, text in sorted(pick.dependencies.items()):
            requirements.setdefault(dependency, []).append(versions.parse_range(text))
            queue.append(dependency)
    return True


def _check(roots: Sequence[Root], chosen: Sequence[Candidate]) -> None:
    """The answer must satisfy every requirement and list dependencies before dependents."""
    by_name = {c.name: c for c in chosen}
    position = {c.name: i for i, c in enumerate(chosen)}
    for root in roots:
        assert versions.satisfies(by_name[root.name].version, root.requirement), root
    for candidate in chosen:
        for dependency, text in candidate.dependencies.items():
            assert versions.satisfies(by_name[dependency].version, text), (candidate, dependency)
            assert position[dependency] < position[candidate.name]


def _clear_caches() -> None:
    versions._range_or_error.cache_clear()
    versions._comparator.cache_clear()
    versions.parse_version.cache_clear()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)

    roots, candidates, _ = generate(args.seed)
    greedy = greedy_succeeds(roots, candidates)
    times = []
    for _ in range(args.runs):
        _clear_caches()
        start = time.perf_counter()
        result = resolve_detailed(roots, candidates)
        times.append((time.perf_counter() - start) * 1000)
    _check(roots, result.chosen)
    median = statistics.median(times)
    if args.json:
        print(json.dumps({"name": "resolve-500x5", "median_ms": round(median, 1), "goal_ms": GOAL_MS}))
    else:
        print(f"resolve-500x5: median {median:.1f} ms over {args.runs} cold runs (goal {GOAL_MS} ms)")
        print(f"  components resolved: {len(result.chosen)}")
        print(f"  candidates tried: {result.attempts}, backtracks: {result.backtracks}")
        print(f"  greedy newest-first without backtracking: {'succeeds' if greedy else 'fails'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
