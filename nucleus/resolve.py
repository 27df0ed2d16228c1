"""Choose one version of every component a deployment needs, so that every requirement holds.

Pure: no I/O, nothing from the rest of the nucleus but its errors and npm ranges. The caller gathers the
candidates (local recipe files, built-ins, the component store) and says what is deployed now.

Rules:
- every requirement (a root's or a dependency's) is checked on its own against each candidate, with
  node-semver's semantics (`nucleus.versions`); ranges are never merged as strings;
- preference: the version deployed now (`preferred`) while it still fits, else the highest that fits;
  prereleases only where a range asks for them (node's prerelease rule does that by itself);
- complete: if some choice of versions satisfies everything, one is found (backtracking); a choice that
  would close a dependency cycle counts as a conflict, so a cycle-free alternative wins when there is
  one; a bound on the number of attempts turns a pathological search into a clear "too-deep" error
  instead of a hang;
- deterministic: the same input gives the same output, in dependency order (dependencies first, ties
  broken by name).

The search is our own: conflict-directed backjumping over components, most-constrained component first.
(resolvelib 1.2.1, pip's resolver, needed 0.8 s to 58 s on the 500-component benchmark, 1.2 s even without
a single backtrack since it re-checks every pin each round, and on one seed reported no solution where
there is one; see docs/versions.md.)

How the search works, in short. Each component that some chosen candidate (or a root) requires is a
variable; its domain is the bitmask of its candidates that every requirement on it allows. The search
repeatedly picks the open component with the fewest candidates left (name breaks ties), tries its
candidates in preference order, and for each one adds the candidate's own requirements, checking at
once that each dependency still has a candidate left (forward checking). When a component runs out of
candidates, the *conflict set* -- the earlier decisions that caused each candidate to be ruled out --
says how far back to jump: straight to the latest decision that had a part in it, skipping decisions
that had none. An empty conflict set means no decision could help: the requirements are unsatisfiable,
and the recorded clashes say why.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from nucleus.errors import ResolutionError
from nucleus.versions import (
    InvalidRange,
    InvalidVersion,
    Range,
    Version,
    parse_range,
    parse_version,
)

__all__ = ["DEFAULT_MAX_ATTEMPTS", "Candidate", "Resolution", "Root", "resolve", "resolve_detailed"]

DEFAULT_MAX_ATTEMPTS = 50_000
"""How many candidate tries before giving up with "too-deep" (about a second here). Real deployments
need a few hundred; the 500-component benchmark, with its planted conflicts, about a thousand. A search
past this bound is pathological (e.g. a pigeonhole puzzle encoded in ranges)."""


@dataclass(frozen=True)
class Candidate:
    """One available version of a component, with what it requires."""

    name: str
    version: str  # strict semver
    dependencies: Mapping[str, str] = field(default_factory=dict, hash=False)  # name -> npm range
    origin: str = ""  # where it came from, for messages: a file path, "built-in", "store"


class Root(NamedTuple):
    """A requirement made by the deployment itself (or by a local recipe that pins its own version)."""

    name: str
    requirement: str  # npm range
    requester: str = "the deployment"


class Resolution(NamedTuple):
    """The outcome of `resolve_detailed`: the chosen candidates and how hard the search worked."""

    chosen: list[Candidate]  # dependency order: dependencies first, ties broken by name
    attempts: int  # candidates tried
    backtracks: int  # candidates withdrawn after being tried (ruled out at once or by a later conflict)


def resolve(
    roots: Sequence[Root],
    candidates: Mapping[str, Sequence[Candidate]],
    preferred: Mapping[str, str] = {},  # read only
    looked_in: str = "",
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> list[Candidate]:
    """The chosen candidates in dependency order (dependencies before dependents; ties broken by name).

    `candidates` maps every known name to its available versions (when two share a version, the first
    listed wins); `preferred` maps a name to the version deployed now; `looked_in` is a phrase naming
    where candidates were looked up, for "missing" errors. Raises ResolutionError (reason "conflict",
    "missing", "cycle", "invalid" or "too-deep") with lines a person can read.
    """
    return resolve_detailed(roots, candidates, preferred, looked_in, max_attempts=max_attempts).chosen


def resolve_detailed(
    roots: Sequence[Root],
    candidates: Mapping[str, Sequence[Candidate]],
    preferred: Mapping[str, str] = {},  # read only
    looked_in: str = "",
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> Resolution:
    """`resolve`, plus the search statistics (for the benchmark and for logs)."""
    search = _Search(candidates, preferred, looked_in, max_attempts)
    assignment = search.run(roots)
    chosen = _dependency_order(assignment)
    return Resolution(chosen, search.attempts, search.backtracks)


# ---------------------------------------------------------------------------------------------------
# The search's own view of candidates and requirements


class _Option:
    """A candidate prepared for the search: parsed version, its bit in its component's domain."""

    __slots__ = ("candidate", "name", "version", "bit", "label", "requirements", "needs")

    def __init__(self, candidate: Candidate, name: str, version: Version, bit: int) -> None:
        self.candidate = candidate
        self.name = name
        self.version = version
        self.bit = bit
        self.label = f"{name} {version}"
        self.requirements: list[_Requirement] | None = None  # read when first tried
        self.needs: tuple[str, ...] = tuple(sorted(candidate.dependencies))  # the names it requires


class _Requirement:
    """`requester requires name text`; the requester is an option, or None for a root."""

    __slots__ = ("name", "text", "range", "requester", "root_label")

    def __init__(self, name: str, text: str, range_: Range, requester: _Option | None, root_label: str = "") -> None:
        self.name = name
        self.text = text
        self.range = range_
        self.requester = requester
        self.root_label = root_label

    @property
    def requester_label(self) -> str:
        return self.requester.label if self.requester is not None else self.root_label

    def describe(self) -> str:
        """`A 1.0.0 requires B ^2.0.0`: how a requirement reads in a message."""
        return f"{self.requester_label} requires {self.name} {_shown_range(self.text)}"


def _shown_range(text: str) -> str:
    """A range as a message shows it; the empty range reads as `*`."""
    return text.strip() or "*"


@dataclass
class _Clash:
    """Why a candidate was ruled out, kept for the message if nothing works in the end.

    kind "conflict": the `requirements` on `subject` leave none of its versions (or reject the one
    already chosen); kind "missing": `subject` has no candidate at all; kind "cycle": choosing a version
    of `subject` would close the dependency `cycle`; kind "exhausted": every candidate of `subject` was
    ruled out, each for the reason in `details`.
    """

    kind: str
    subject: str
    requirements: list[_Requirement] = field(default_factory=list)
    details: list[tuple[_Option, _Clash]] = field(default_factory=list)
    cycle: list[_Option] = field(default_factory=list)


class _Frame:
    """One decision: which candidate a component gets, and what has been learned about the others."""

    __slots__ = ("name", "level", "domain", "tried", "current", "mark", "conflicts", "rejections", "needed_by")

    def __init__(self, name: str, level: int, domain: int, needed_by: int) -> None:
        self.name = name
        self.level = level
        self.domain = domain  # the candidates the requirements of earlier decisions allow
        self.tried = 0  # bitmask of candidates tried so far
        self.current: _Option | None = None
        self.mark = 0  # trail length before the current candidate's requirements were added
        self.conflicts: set[int] = set()  # levels of earlier decisions that ruled candidates out
        self.rejections: list[tuple[_Option, _Clash]] = []
        self.needed_by = needed_by  # level of the earliest decision requiring this component (-1: a root)


class _TooDeep(Exception):
    pass


class _Search:
    """Conflict-directed backjumping; see the module docstring. One instance per resolution."""

    def __init__(
        self,
        candidates: Mapping[str, Sequence[Candidate]],
        preferred: Mapping[str, str],
        looked_in: str,
        max_attempts: int,
    ) -> None:
        self.candidates = candidates
        self.preferred = preferred
        self.looked_in = looked_in
        self.max_attempts = max_attempts
        self.attempts = 0
        self.backtracks = 0
        self.options: dict[str, list[_Option]] = {}  # name -> candidates, most preferred first
        self.masks: dict[tuple[str, str], int] = {}  # (name, range text) -> allowed candidates
        # Search state, undone through the trail when a decision is withdrawn.
        self.domain: dict[str, int] = {}
        self.active: dict[str, list[_Requirement]] = {}
        self.assigned: dict[str, _Option] = {}
        self.level_of: dict[str, int] = {}
        self.open: set[str] = set()  # required, not yet decided
        # (candidates left, name) for open components; stale entries are skipped when popped.
        self.queue: list[tuple[int, str]] = []
        self.trail: list[tuple[str, int]] = []  # (name, its domain before a requirement was added)
        # A topological order of the graph "chosen candidate -> the components it requires", kept up to
        # date as candidates are chosen (Pearce-Kelly), so that closing a cycle is noticed cheaply.
        # Withdrawing a choice only removes edges, which never invalidates an order.
        self.order: dict[str, int] = {}
        self.next_position = 0
        self.frames: list[_Frame] = []
        self.last_clash: _Clash | None = None

    # -- inputs ---------------------------------------------------------------------------------------

    def options_of(self, name: str) -> list[_Option]:
        """The component's candidates, most preferred first: the deployed version, then newest first."""
        options = self.options.get(name)
        if options is None:
            options = self.options[name] = self._prepare_options(name)
        return options

    def _prepare_options(self, name: str) -> list[_Option]:
        parsed: list[tuple[Version, Candidate]] = []
        seen: set[Version] = set()
        for candidate in self.candidates.get(name, ()):
            try:
                version = parse_version(candidate.version)
            except InvalidVersion as error:
                origin = f" ({candidate.origin})" if candidate.origin else ""
                raise ResolutionError(
                    [f'component {name}{origin} has an invalid version "{candidate.version}": {error.detail}'],
                    reason="invalid",
                ) from None
            if version not in seen:  # the first listed wins among equal versions
                seen.add(version)
                parsed.append((version, candidate))
        parsed.sort(key=lambda pair: pair[0], reverse=True)
        wanted = self._preferred_version(name)
        if wanted is not None:
            parsed.sort(key=lambda pair: pair[0] != wanted)  # stable: the deployed version moves first
        return [_Option(candidate, name, version, 1 << i) for i, (version, candidate) in enumerate(parsed)]

    def _preferred_version(self, name: str) -> Version | None:
        text = self.preferred.get(name)
        if text is None:
            return None
        try:
            return parse_version(text)
        except InvalidVersion:
            return None  # a hint we cannot read is no hint

    def requirements_of(self, option: _Option) -> list[_Requirement]:
        """The option's dependencies as requirements, by name; an invalid range stops the resolution."""
        if option.requirements is None:
            option.requirements = [
                _Requirement(name, text, self._range(text, f"{option.label} requires {name}"), option)
                for name, text in sorted(option.candidate.dependencies.items())
            ]
        return option.requirements

    @staticmethod
    def _range(text: str, who: str) -> Range:
        """The parsed range; an invalid one stops the resolution, naming who wrote it (`who`)."""
        try:
            return parse_range(text)
        except InvalidRange as error:
            raise ResolutionError([f'{who} "{text}": invalid range — {error.detail}'], reason="invalid") from None

    def mask(self, requirement: _Requirement) -> int:
        """The bitmask of the required component's candidates this requirement allows (cached)."""
        key = (requirement.name, requirement.text)
        mask = self.masks.get(key)
        if mask is None:
            allows = requirement.range.allows
            mask = 0
            for option in self.options_of(requirement.name):
                if allows(option.version):
                    mask |= option.bit
            self.masks[key] = mask
        return mask

    # -- the search -----------------------------------------------------------------------------------

    def run(self, roots: Sequence[Root]) -> dict[str, _Option]:
        """Find a complete assignment, or raise ResolutionError saying why there is none."""
        for root in roots:
            requirement = _Requirement(
                root.name,
                root.requirement,
                self._range(root.requirement, f"{root.requester} requires {root.name}"),
                None,
                root.requester,
            )
            clash = self._require(requirement)
            if clash is not None:
                raise self._failure(clash)
        try:
            self._search()
        except _TooDeep:
            raise self._too_deep() from None
        return dict(self.assigned)

    def _search(self) -> None:
        while True:
            frame = self.frames[-1] if self.frames and self.frames[-1].current is None else None
            if frame is None:
                name = self._most_constrained()
                if name is None:
                    return
                frame = _Frame(name, len(self.frames), self.domain[name], self._needed_by(name))
                self.frames.append(frame)
            option = self._next_option(frame)
            if option is None:
                self._backjump(frame)
                continue
            self.attempts += 1
            if self.attempts > self.max_attempts:
                raise _TooDeep
            self._choose(frame, option)

    def _most_constrained(self) -> str | None:
        """The open component with the fewest candidates left; its name breaks ties (determinism)."""
        queue, domain, open_ = self.queue, self.domain, self.open
        while queue:
            count, name = heapq.heappop(queue)
            if name in open_ and domain[name].bit_count() == count:
                return name
        return None

    def _mark_open(self, name: str) -> None:
        """The component is required and undecided (again), or has fewer candidates left: queue it."""
        self.open.add(name)
        heapq.heappush(self.queue, (self.domain[name].bit_count(), name))

    def _needed_by(self, name: str) -> int:
        """The earliest decision that requires this component (-1 when a root does)."""
        return min(self._level(requirement) for requirement in self.active[name])

    def _level(self, requirement: _Requirement) -> int:
        requester = requirement.requester
        return -1 if requester is None else self.level_of[requester.name]

    def _next_option(self, frame: _Frame) -> _Option | None:
        untried = frame.domain & ~frame.tried
        if not untried:
            return None
        bit = untried & -untried  # the lowest bit: the most preferred candidate left
        frame.tried |= bit
        return self.options[frame.name][bit.bit_length() - 1]

    def _choose(self, frame: _Frame, option: _Option) -> None:
        """Assign the option and add its requirements; on a clash, withdraw it at once."""
        frame.current = option
        frame.mark = len(self.trail)
        self.assigned[frame.name] = option
        self.level_of[frame.name] = frame.level
        self.open.discard(frame.name)
        for requirement in self.requirements_of(option):
            clash = self._require(requirement)
            if clash is not None:
                blamed = self._blame(requirement, clash)
                blamed.discard(frame.level)  # a candidate that requires itself in another version
                self._withdraw(frame)
                self._reject(frame, option, blamed, clash)
                return
        cycle = self._cycle_through(option)
        if cycle:
            # Greengrass cannot order a cycle: treat it as a conflict with the decisions that form it.
            blamed = {self.level_of[member.name] for member in cycle} - {frame.level}
            self._withdraw(frame)
            self._reject(frame, option, blamed, _Clash("cycle", frame.name, cycle=cycle))

    def _cycle_through(self, option: _Option) -> list[_Option]:
        """The dependency cycle the newly chosen option closes, starting with it; [] if none.

        Its new edges `option -> dependency` mostly agree with the topological order already; for one
        that does not, only the components ordered between the two ends are searched and reordered.
        """
        name, order = option.name, self.order
        for dependency in option.needs:
            if dependency == name:
                return [option]  # it requires itself
            if order[dependency] > order[name]:
                continue
            if dependency not in self.assigned:
                order[dependency] = self._fresh_position()  # no edges out of it yet: move it last
                continue
            cycle = self._reorder(option, dependency)
            if cycle:
                return cycle
        return []

    def _fresh_position(self) -> int:
        """A position after every other in the order."""
        self.next_position += 1
        return self.next_position

    def _reorder(self, option: _Option, dependency: str) -> list[_Option]:
        """Pearce-Kelly for the edge `option -> dependency`, which the order has backwards: the
        components after `dependency` (and before `option`) move behind those before `option` (and
        after `dependency`), unless the forward search reaches `option` -- then that path is a cycle."""
        order, assigned = self.order, self.assigned
        name = option.name
        upper, lower = order[name], order[dependency]
        reached_from: dict[str, str] = {dependency: name}  # forward: component -> where it was reached from
        stack = [dependency]
        while stack:
            current = stack.pop()
            chosen = assigned.get(current)
            for following in chosen.needs if chosen is not None else ():
                if following == name:
                    chain = [current]
                    while chain[-1] != dependency:
                        chain.append(reached_from[chain[-1]])
                    return [option, *(assigned[n] for n in reversed(chain))]
                if following not in reached_from and order[following] < upper:
                    reached_from[following] = current
                    stack.append(following)
        behind = set(reached_from)
        ahead = {name}  # backward: the chosen components that (transitively) require `option`
        stack = [name]
        while stack:
            current = stack.pop()
            for requirement in self.active.get(current, ()):
                requester = requirement.requester
                if requester is not None and requester.name not in ahead and order[requester.name] > lower:
                    ahead.add(requester.name)
                    stack.append(requester.name)
        moved = sorted(ahead, key=order.__getitem__) + sorted(behind, key=order.__getitem__)
        for component, position in zip(moved, sorted(order[c] for c in moved), strict=True):
            order[component] = position
        return []

    def _require(self, requirement: _Requirement) -> _Clash | None:
        """Add a requirement (forward checking): None, or the clash it causes."""
        name = requirement.name
        if name not in self.order:
            self.order[name] = self._fresh_position()
        if not self.options_of(name):
            return _Clash("missing", name, [requirement])
        allowed = self.mask(requirement)
        chosen = self.assigned.get(name)
        if chosen is not None and not allowed & chosen.bit:
            return _Clash("conflict", name, [requirement, *self.active[name]])
        domain = self.domain.get(name)
        if domain is None:
            domain = (1 << len(self.options[name])) - 1
        narrowed = domain & allowed
        if not narrowed:
            return _Clash("conflict", name, [requirement, *self._excluding(name, allowed)])
        self.trail.append((name, domain))
        self.domain[name] = narrowed
        self.active.setdefault(name, []).append(requirement)
        if chosen is None:
            self._mark_open(name)
        return None

    def _excluding(self, name: str, allowed: int) -> list[_Requirement]:
        """The requirements in force on `name` that rule out some candidate `allowed` lets through."""
        return [r for r in self.active.get(name, ()) if allowed & ~self.mask(r)]

    def _blame(self, requirement: _Requirement, clash: _Clash) -> set[int]:
        """The earlier decisions a clash depends on (besides the candidate that made `requirement`)."""
        name = requirement.name
        if clash.kind == "missing":
            return set()
        chosen = self.assigned.get(name)
        if chosen is not None and not self.mask(requirement) & chosen.bit:
            return {self.level_of[name]}
        # Each candidate the new requirement allows was ruled out by some requirement in force: blame
        # the earliest decision that made one (a root's requirement needs no blame at all).
        blamed: set[int] = set()
        allowed = self.mask(requirement)
        for option in self.options[name]:
            if option.bit & allowed:
                level = self._earliest_excluder(name, option)
                if level >= 0:
                    blamed.add(level)
        return blamed

    def _earliest_excluder(self, name: str, option: _Option) -> int:
        """The level of the earliest decision whose requirement rules the option out (-1: a root's)."""
        return min(self._level(r) for r in self.active[name] if not self.mask(r) & option.bit)

    def _withdraw(self, frame: _Frame) -> None:
        """Undo the frame's current choice: its requirements, then the assignment itself."""
        self._undo_trail(frame.mark)
        del self.assigned[frame.name]
        del self.level_of[frame.name]
        self._mark_open(frame.name)
        frame.current = None

    def _undo_trail(self, mark: int) -> None:
        """Remove the requirements added since `mark`, newest first, restoring the domains they narrowed."""
        trail, domain, active, assigned, open_ = self.trail, self.domain, self.active, self.assigned, self.open
        reopened: set[str] = set()
        while len(trail) > mark:
            name, previous = trail.pop()
            domain[name] = previous
            requirements = active[name]
            requirements.pop()
            if not requirements:
                open_.discard(name)
                del active[name]
                del domain[name]
            elif name not in assigned:
                reopened.add(name)
        for name in sorted(reopened & open_):
            self._mark_open(name)

    def _reject(self, frame: _Frame, option: _Option, blamed: set[int], clash: _Clash) -> None:
        self.backtracks += 1
        frame.conflicts |= blamed
        frame.rejections.append((option, clash))
        self.last_clash = clash

    def _backjump(self, frame: _Frame) -> None:
        """Every candidate of the frame is ruled out: jump back to the latest decision to blame."""
        conflicts = set(frame.conflicts)
        for option in self.options[frame.name]:
            if not option.bit & frame.domain:  # ruled out before the frame began
                conflicts.add(self._earliest_excluder(frame.name, option))
        conflicts.add(frame.needed_by)
        conflicts.discard(-1)
        clash = self._summary(frame)
        self.frames.pop()
        if not conflicts:
            raise self._failure(clash)
        self._mark_open(frame.name)  # still required until the jump below says otherwise
        target = max(conflicts)
        while len(self.frames) - 1 > target:
            self._withdraw(self.frames.pop())
        culprit = self.frames[-1]
        withdrawn = culprit.current
        assert withdrawn is not None
        self._withdraw(culprit)
        conflicts.discard(target)
        self._reject(culprit, withdrawn, conflicts, clash)

    def _summary(self, frame: _Frame) -> _Clash:
        """One clash for an exhausted frame: its only clash, or clashes on one other component merged,
        or an "exhausted" clash listing why each candidate was ruled out."""
        clashes = [clash for _, clash in frame.rejections]
        if len(clashes) == 1:
            return clashes[0]
        kinds = {(clash.kind, clash.subject) for clash in clashes}
        if len(kinds) == 1 and clashes[0].kind in ("conflict", "missing"):
            merged: list[_Requirement] = []
            for clash in clashes:
                merged.extend(r for r in clash.requirements if r not in merged)
            return _Clash(clashes[0].kind, clashes[0].subject, merged)
        return _Clash("exhausted", frame.name, list(self.active.get(frame.name, ())), list(frame.rejections))

    # -- messages -------------------------------------------------------------------------------------

    def _failure(self, clash: _Clash) -> ResolutionError:
        return ResolutionError(self._block(clash), reason=_reason(clash))

    def _block(self, clash: _Clash) -> list[str]:
        """A clash as an error block: what failed on the first line, one fact per following line."""
        if clash.kind == "cycle":
            return [_cycle_text(clash.cycle)]
        if clash.kind == "missing":
            lines = [f"cannot find component {clash.subject}:"]
            for r in clash.requirements:
                lines.append(f"  - required by {r.requester_label} ({r.name} {_shown_range(r.text)})")
            lines.append(f"  - looked in: {self._where()}")
            return lines
        lines = [f"cannot choose a version of {clash.subject}:"]
        lines += [f"  - {r.describe()}" for r in _unique(clash.requirements)]
        lines.append(f"  - available: {self._available(clash.subject)}")
        lines += self._ruled_out(clash, "  ", _DETAIL_DEPTH)
        return lines

    def _ruled_out(self, clash: _Clash, indent: str, depth: int) -> list[str]:
        """One line per candidate of an exhausted component, saying what ruled it out; a candidate
        ruled out because nothing works for another component gets that component's lines, nested."""
        lines: list[str] = []
        for option, detail in clash.details[:_DETAIL_BREADTH]:
            if detail.kind == "exhausted" and depth > 1:
                lines.append(f"{indent}- {option.label} is ruled out: no version of {detail.subject} works with it:")
                lines += self._ruled_out(detail, indent + "    ", depth - 1)
            else:
                lines.append(f"{indent}- {option.label} is ruled out: {self._inline(detail)}")
        if len(clash.details) > _DETAIL_BREADTH:
            lines.append(f"{indent}- … and {len(clash.details) - _DETAIL_BREADTH} more versions of {clash.subject}")
        return lines

    def _inline(self, clash: _Clash) -> str:
        """A clash on one line, for the per-candidate lines of a larger block."""
        if clash.kind == "cycle":
            return _cycle_text(clash.cycle)
        if clash.kind == "missing":
            who = ", ".join(f"{r.requester_label} ({_shown_range(r.text)})" for r in clash.requirements)
            return f"cannot find component {clash.subject}: required by {who}; looked in: {self._where()}"
        if clash.kind == "exhausted":
            return f"no version of {clash.subject} works ({len(clash.details)} tried)"
        facts = [r.describe() for r in _unique(clash.requirements)]
        facts.append(f"available: {self._available(clash.subject)}")
        return f"cannot choose a version of {clash.subject}: " + "; ".join(facts)

    def _where(self) -> str:
        """Where candidates were looked up, for "missing" messages."""
        return self.looked_in or "the known candidates"

    def _available(self, name: str) -> str:
        versions = sorted(option.version for option in self.options_of(name))
        return ", ".join(str(v) for v in versions) or "none"

    def _too_deep(self) -> ResolutionError:
        lines = [
            f"dependency resolution gave up after trying {self.max_attempts} candidates: the requirements "
            "are too tangled to search exhaustively",
        ]
        if self.last_clash is not None:
            lines.append(f"  - the last conflict: {self._inline(self.last_clash)}")
        lines.append("  - pin the versions of the components named above in the deployment to narrow the search")
        return ResolutionError(lines, reason="too-deep")


_DETAIL_DEPTH = 2  # nested "ruled out" levels shown in a conflict message
_DETAIL_BREADTH = 6  # candidates shown per level; a message stays readable in a terminal


def _unique(requirements: Iterable[_Requirement]) -> list[_Requirement]:
    """Requirements without repeats (the same text from the same requester), in order."""
    seen: set[tuple[str, str, str]] = set()
    unique: list[_Requirement] = []
    for requirement in requirements:
        key = (requirement.requester_label, requirement.name, requirement.text)
        if key not in seen:
            seen.add(key)
            unique.append(requirement)
    return unique


def _reason(clash: _Clash) -> str:
    """ "missing" (or "cycle") when every clash behind the failure is one, else "conflict"."""
    if clash.kind == "exhausted":
        kinds = {_reason(detail) for _, detail in clash.details}
        return kinds.pop() if len(kinds) == 1 and kinds <= {"missing", "cycle"} else "conflict"
    return clash.kind


def _cycle_text(cycle: Sequence[_Option]) -> str:
    """`dependency cycle: A 1.0.0 -> B 2.0.0 -> A 1.0.0`, starting at the smallest name."""
    start = min(range(len(cycle)), key=lambda i: cycle[i].name)
    ordered = [*cycle[start:], *cycle[:start]]
    return "dependency cycle: " + " -> ".join(option.label for option in [*ordered, ordered[0]])


# ---------------------------------------------------------------------------------------------------
# Dependency order and cycles


def _dependency_order(assignment: Mapping[str, _Option]) -> list[Candidate]:
    """Dependencies before dependents, ties broken by name (Kahn's algorithm with a heap of names)."""
    needs = {name: [dep for dep in option.needs if dep in assignment] for name, option in assignment.items()}
    waiting_on = {name: len(deps) for name, deps in needs.items()}
    dependents: dict[str, list[str]] = {name: [] for name in assignment}
    for name, deps in needs.items():
        for dep in deps:
            dependents[dep].append(name)
    ready = [name for name, count in waiting_on.items() if count == 0]
    heapq.heapify(ready)
    order: list[Candidate] = []
    while ready:
        name = heapq.heappop(ready)
        order.append(assignment[name].candidate)
        for dependent in dependents[name]:
            waiting_on[dependent] -= 1
            if waiting_on[dependent] == 0:
                heapq.heappush(ready, dependent)
    if len(order) < len(assignment):
        left = {name for name, count in waiting_on.items() if count > 0}
        cycle = _find_cycle(left, needs)
        shown = " -> ".join(assignment[name].label for name in [*cycle, cycle[0]])
        raise ResolutionError([f"dependency cycle: {shown}"], reason="cycle")
    return order


def _find_cycle(names: set[str], needs: Mapping[str, list[str]]) -> list[str]:
    """A cycle among `names` (each of which waits on another of them), starting at its smallest name."""
    path: list[str] = []
    position: dict[str, int] = {}
    name = min(names)
    while name not in position:
        position[name] = len(path)
        path.append(name)
        name = next(dep for dep in needs[name] if dep in names)
    cycle = path[position[name] :]
    start = cycle.index(min(cycle))
    return cycle[start:] + cycle[:start]
