"""Strict semantic versions and npm version ranges, with node-semver's default-option semantics.

Recipes declare dependencies with npm ranges (`^1.2.0`, `>=1.0.0 <2.0.0`, `1.x || 2.x`). Classic
Greengrass evaluates them with a Java library that differs from npm in small but visible ways (it lets
`2.0.0-beta` satisfy `*`, reads `>1.0` as `>1.0.0`, merges ranges depending on their order). We evaluate
them exactly as node-semver 7 does with its default options (no `loose`, no `includePrerelease`), so that
a range means here what it means to everyone who knows npm. `docs/versions.md` lists the grammar and the
differences; `tests/data/semver/` holds node's own answers for about 230,000 (range, version) pairs.

How a range is read, in order (each step is a documented rule of node-semver, or a behaviour of its
parser that we reproduce because real ranges in the wild rely on it):

1. whitespace runs collapse to one space; the text splits on `||` into comparator sets;
2. in each set, build metadata (`+build.5`) is removed: it never takes part in precedence;
3. a set of the form `A - B` is a hyphen range and becomes `>=A <=B` (partial ends widen);
4. spaces between an operator and its version are dropped (`>= 1.2` is `>=1.2`), likewise after `~`
   and `^`; the set then splits on spaces into comparators;
5. each comparator desugars: caret `^`, tilde `~`/`~>`, x-ranges (`1.x`, `1.2`, `*`, `>1.2`);
6. what is left must be a primitive comparator `[<|<=|>|>=|=]version` or empty (= any version).

A version with a prerelease tag (`1.2.3-beta.1`) satisfies a comparator set only if it satisfies every
comparator and some comparator of that set names the same `major.minor.patch` with a prerelease tag.

Speed matters (the resolver asks a lot): versions and ranges are parsed once (lru caches) and a test is a
handful of tuple comparisons.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "MAX_LENGTH",
    "MAX_SAFE_INTEGER",
    "InvalidRange",
    "InvalidVersion",
    "Range",
    "Version",
    "compare",
    "is_valid_range",
    "is_valid_version",
    "parse_range",
    "parse_version",
    "satisfies",
    "valid",
    "valid_range",
]

MAX_LENGTH = 256
"""node-semver refuses version strings longer than this (it protects its regexes)."""

MAX_SAFE_INTEGER = 2**53 - 1
"""node-semver keeps version numbers as JavaScript numbers, exact only up to this value."""

# ---------------------------------------------------------------------------------------------------
# Lexical pieces. Written from the range grammar in node-semver's README; the repetition bounds are the
# ones node-semver puts on its own patterns (a number has at most 257 digits, an alphanumeric prerelease
# identifier at most 256 leading digits and 251 further characters), which decide edge cases of ranges
# whose prerelease is dropped (`1.2.x-<very long>`).

class _LazyPattern:
    """A regular expression compiled on first use.

    The patterns below are large (bounded repetitions of up to 257 digits); compiling all of them costs more
    than a whole `nucleus deploy` of a recipe without dependencies should, so each waits until it is needed.
    """

    def __init__(self, source: str) -> None:
        self._source = source

    def __getattr__(self, name: str) -> Any:
        compiled = re.compile(self._source)
        for method in ("match", "fullmatch", "search", "sub", "split"):
            setattr(self, method, getattr(compiled, method))  # later calls skip __getattr__
        return getattr(compiled, name)


# JavaScript's \s (what node trims and splits on) differs from Python's: no \x1c-\x1f or \x85, but \ufeff.
_JS_SPACE = "[\t\n\x0b\x0c\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
_JS_SPACE_RUN = _LazyPattern(_JS_SPACE + "+")
_JS_EDGE_SPACE = _LazyPattern(f"^{_JS_SPACE}+|{_JS_SPACE}+$")

_NUMBER = r"(?:0|[1-9][0-9]{0,256})"
_ALPHANUMERIC_ID = r"(?:[0-9]{0,256}[A-Za-z-][A-Za-z0-9-]{0,250})"
_PRERELEASE_ID = f"(?:{_NUMBER}|{_ALPHANUMERIC_ID})"
_PRERELEASE = rf"(?:-({_PRERELEASE_ID}(?:\.{_PRERELEASE_ID})*))"
_BUILD_ID = r"[0-9A-Za-z-]+"
_BUILD = rf"(?:\+({_BUILD_ID}(?:\.{_BUILD_ID})*))"

# A full version as `semver.valid` accepts it: an optional `v`, then MAJOR.MINOR.PATCH[-pre][+build].
_FULL_VERSION = _LazyPattern(rf"v?({_NUMBER})\.({_NUMBER})\.({_NUMBER}){_PRERELEASE}?{_BUILD}?")

# One element of a partial version: a number or a wildcard.
_PART = rf"(?:{_NUMBER}|[xX*])"
# A partial version, as it may appear in a range: `1`, `1.2`, `1.x`, `1.2.3-beta`. node-semver also lets
# any mix of `v`, `=` and spaces stand before it (so `=v1.2` and `> =1.2` are accepted).
_PARTIAL = rf"[v= ]*({_PART})(?:\.({_PART})(?:\.({_PART}){_PRERELEASE}?)?)?"
_PARTIAL_TEXT = re.sub(r"\((?!\?)", "(?:", _PARTIAL)  # the same, without capture groups

# `<`, `<=`, `>`, `>=`, `=` or nothing; greedy, so `<=1.2` reads as `<=` `1.2`, never `<` `=1.2`.
_OPERATOR = r"((?:<|>)?=?)"

# Step 2: build metadata anywhere in a comparator set.
_BUILD_ANYWHERE = _LazyPattern(rf"\+{_BUILD_ID}(?:\.{_BUILD_ID})*")
# Step 3: a whole comparator set that is a hyphen range. (One optional space at each end, exactly one
# space around the dash; any further space belongs to the partial's `[v= ]*` prefix.)
_HYPHEN_RANGE = _LazyPattern(rf" ?({_PARTIAL_TEXT}) - ({_PARTIAL_TEXT}) ?")
_HYPHEN_END = _LazyPattern(_PARTIAL)
# Step 4: an operator, a space, then something version-like: the space goes. A "loose" version (digits
# with leading zeros, a prerelease without its dash) counts as version-like here too.
_LOOSE_VERSION_TEXT = (
    r"[v= ]*[0-9]{1,256}\.[0-9]{1,256}\.[0-9]{1,256}"
    rf"(?:-?(?:{_ALPHANUMERIC_ID}|[0-9]{{1,256}})(?:\.(?:{_ALPHANUMERIC_ID}|[0-9]{{1,256}}))*)?"
)
_OPERATOR_SPACE = _LazyPattern(rf"( ?)((?:<|>)?=?) ?({_LOOSE_VERSION_TEXT}|{_PARTIAL_TEXT})")
_TILDE_SPACE = _LazyPattern(r"( ?)~>? ")
_CARET_SPACE = _LazyPattern(r"( ?)\^ ")
# Step 5: the three sugars, each matching one whole comparator.
_CARET = _LazyPattern(rf"\^{_PARTIAL}")
_TILDE = _LazyPattern(rf"~>?{_PARTIAL}")
_X_RANGE = _LazyPattern(rf"{_OPERATOR} ?{_PARTIAL}")
# node-semver finally deletes a leftover `*` (with an operator before it) from a comparator it could not
# otherwise read, so `*1.2.3` reads as `1.2.3`. Odd, but part of what "valid" means to npm.
_STRAY_STAR = _LazyPattern(r"(?:<|>)?=? ?\*")
# Step 6: a primitive comparator.
_PRIMITIVE = _LazyPattern(rf"{_OPERATOR} ?(v?{_NUMBER}\.{_NUMBER}\.{_NUMBER}{_PRERELEASE}?)")


class InvalidVersion(ValueError):
    """A version string node-semver would not accept; `detail` says why, for messages that quote it."""

    def __init__(self, text: str, detail: str) -> None:
        super().__init__(f'invalid version "{text}": {detail}')
        self.text = text
        self.detail = detail


class InvalidRange(ValueError):
    """A range string where node-semver's `validRange` returns null; `detail` says why."""

    def __init__(self, text: str, detail: str) -> None:
        super().__init__(f'invalid range "{text}": {detail}')
        self.text = text
        self.detail = detail


def _js_trim(text: str) -> str:
    """Trim as JavaScript's String.prototype.trim does (its notion of whitespace, not Python's)."""
    trimmed: str = _JS_EDGE_SPACE.sub("", text)
    return trimmed


def _is_wild(part: str) -> bool:
    """An absent part (""), `x`, `X` or `*` stands for "any value"."""
    return part in ("", "x", "X", "*")


# ---------------------------------------------------------------------------------------------------
# Versions


_PrereleaseKey = tuple[tuple[int, "int | float | str"], ...]


def _identifier_key(identifier: int | str) -> tuple[int, int | float | str]:
    """Numeric identifiers sort before alphanumeric ones, numerically; alphanumeric ones by ASCII.

    node keeps numeric identifiers past MAX_SAFE_INTEGER as strings and compares them as (rounded)
    JavaScript numbers; a float reproduces that rounding.
    """
    if isinstance(identifier, int):
        return (0, identifier)
    if identifier.isdigit():
        return (0, float(identifier))
    return (1, identifier)


class Version:
    """A strict semantic version. Ordered by SemVer 2.0 precedence; build metadata is ignored for
    ordering, equality and hashing (so `1.0.0+a == 1.0.0+b`), exactly as node-semver compares."""

    __slots__ = ("major", "minor", "patch", "prerelease", "build", "key")

    major: int
    minor: int
    patch: int
    prerelease: tuple[int | str, ...]
    build: tuple[str, ...]
    key: tuple[int, int, int, tuple[int, _PrereleaseKey]]
    """The precedence key: compare keys, not versions, in hot loops."""

    def __init__(
        self,
        major: int,
        minor: int,
        patch: int,
        prerelease: Sequence[int | str] = (),
        build: Sequence[str] = (),
    ) -> None:
        for name, number in (("major", major), ("minor", minor), ("patch", patch)):
            if not 0 <= number <= MAX_SAFE_INTEGER:
                raise ValueError(f"{name} version {number} is outside 0..{MAX_SAFE_INTEGER}")
        pre = tuple(prerelease)
        # A release sorts after all of its prereleases: (1, ()) > (0, anything).
        pre_key: tuple[int, _PrereleaseKey] = (0, tuple(_identifier_key(i) for i in pre)) if pre else (1, ())
        setter = object.__setattr__
        setter(self, "major", major)
        setter(self, "minor", minor)
        setter(self, "patch", patch)
        setter(self, "prerelease", pre)
        setter(self, "build", tuple(build))
        setter(self, "key", (major, minor, patch, pre_key))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Version is immutable")

    @property
    def core(self) -> tuple[int, int, int]:
        """The [major, minor, patch] tuple the prerelease rule compares."""
        return (self.major, self.minor, self.patch)

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    def without_build(self) -> str:
        """`MAJOR.MINOR.PATCH[-prerelease]`: what node-semver prints (`semver.valid`, ranges)."""
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(str(i) for i in self.prerelease)
        return text

    def __str__(self) -> str:
        """The normalized form: no `v`, no surrounding space, build metadata kept."""
        text = self.without_build()
        if self.build:
            text += "+" + ".".join(self.build)
        return text

    def __repr__(self) -> str:
        return f"Version({str(self)!r})"

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return self.key == other.key if isinstance(other, Version) else NotImplemented

    def __lt__(self, other: Version) -> bool:
        return self.key < other.key if isinstance(other, Version) else NotImplemented

    def __le__(self, other: Version) -> bool:
        return self.key <= other.key if isinstance(other, Version) else NotImplemented

    def __gt__(self, other: Version) -> bool:
        return self.key > other.key if isinstance(other, Version) else NotImplemented

    def __ge__(self, other: Version) -> bool:
        return self.key >= other.key if isinstance(other, Version) else NotImplemented

    def __reduce__(self) -> tuple[object, ...]:
        return (Version, (self.major, self.minor, self.patch, self.prerelease, self.build))


def _prerelease_identifiers(text: str | None) -> tuple[int | str, ...]:
    """Split a prerelease; numeric identifiers become ints (as node does, below MAX_SAFE_INTEGER)."""
    if not text:
        return ()
    return tuple(int(i) if i.isdigit() and int(i) < MAX_SAFE_INTEGER else i for i in text.split("."))


def _version_from_match(match: re.Match[str]) -> Version:
    major, minor, patch, pre, build = match.groups()
    return Version(int(major), int(minor), int(patch), _prerelease_identifiers(pre), build.split(".") if build else ())


@functools.lru_cache(maxsize=8192)
def parse_version(text: str) -> Version:
    """Parse a version the way `semver.valid` does: surrounding whitespace and one leading `v` are
    accepted (`v1.2.3`), `=1.2.3` and leading zeros are not. Raises ValueError saying why."""
    if not isinstance(text, str):
        raise InvalidVersion(repr(text), f"a version must be a string, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise InvalidVersion(text, f"longer than {MAX_LENGTH} characters")
    match = _FULL_VERSION.fullmatch(_js_trim(text))
    if match is None:
        raise InvalidVersion(text, "expected MAJOR.MINOR.PATCH[-prerelease][+build], numbers without leading zeros")
    try:
        return _version_from_match(match)
    except ValueError as error:
        raise InvalidVersion(text, str(error)) from None


def is_valid_version(text: str) -> bool:
    """True when `parse_version` would accept the text; for validating recipes without try/except."""
    try:
        parse_version(text)
    except ValueError:
        return False
    return True


def valid(text: str) -> str | None:
    """node-semver's `valid()`: the version without `v`, whitespace and build metadata, or None."""
    try:
        return parse_version(text).without_build()
    except ValueError:
        return None


def compare(a: str | Version, b: str | Version) -> int:
    """-1, 0 or 1 by SemVer precedence (build metadata ignored), like node-semver's `compare`."""
    va = a if isinstance(a, Version) else parse_version(a)
    vb = b if isinstance(b, Version) else parse_version(b)
    return (va.key > vb.key) - (va.key < vb.key)


# ---------------------------------------------------------------------------------------------------
# Comparators and ranges

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class _Comparator:
    """One primitive comparator such as `>=1.2.3-beta`; the empty operator means equality."""

    __slots__ = ("op", "version", "test", "key", "prerelease_core")

    def __init__(self, op: str, version: Version) -> None:
        self.op = op
        self.version = version
        self.test = _OPERATORS[op]
        self.key = version.key
        # Only comparators with a prerelease let prereleases of their own major.minor.patch through.
        self.prerelease_core = version.core if version.prerelease else None

    def __str__(self) -> str:
        return self.op + self.version.without_build()


_NULL_SET_TEXT = "<0.0.0-0"  # the comparator nothing satisfies; node-semver writes "no version" so


class Range:
    """An npm range: a union of comparator sets. Build with `parse_range` (cached)."""

    __slots__ = ("raw", "_sets")

    def __init__(self, raw: str, sets: Sequence[Sequence[_Comparator]]) -> None:
        self.raw = raw
        # An empty set is "any version" (`*`, `x`, ``, `>=0.0.0`): it allows every release.
        self._sets: tuple[tuple[_Comparator, ...], ...] = tuple(tuple(s) for s in sets)

    def allows(self, version: Version) -> bool:
        """True when the version satisfies every comparator of at least one set (prerelease rule
        included: a prerelease needs a comparator in that set with the same core and a prerelease)."""
        key = version.key
        for comparators in self._sets:
            for comparator in comparators:
                if not comparator.test(key, comparator.key):
                    break
            else:
                if not version.prerelease:
                    return True
                core = version.core
                for comparator in comparators:
                    if comparator.prerelease_core == core:
                        return True
        return False

    def __contains__(self, version: object) -> bool:
        return isinstance(version, Version) and self.allows(version)

    def __str__(self) -> str:
        """The desugared form, exactly as node-semver's `validRange` prints it (`*` for any)."""
        text = "||".join(" ".join(str(c) for c in s) for s in self._sets)
        return text or "*"

    def __repr__(self) -> str:
        return f"Range({self.raw!r} -> {str(self)!r})"


def _hyphen_bounds(text: str) -> str:
    """`A - B` → `>=A <=B`, a partial A filled with zeros, a partial B widened to its whole span.

    Where A or B is complete, node uses its text as written (prefix included, so `=1.2.3 - 2` is
    invalid but `v1.2.3 - 2` is fine); we keep that.
    """
    match = _HYPHEN_RANGE.fullmatch(text)
    assert match is not None
    low_text, high_text = match.group(1), match.group(2)
    low = _HYPHEN_END.fullmatch(low_text)
    high = _HYPHEN_END.fullmatch(high_text)
    assert low is not None and high is not None
    major, minor, patch, _pre = low.groups(default="")
    if _is_wild(major):
        low_bound = ""
    elif _is_wild(minor):
        low_bound = f">={major}.0.0"
    elif _is_wild(patch):
        low_bound = f">={major}.{minor}.0"
    else:
        low_bound = f">={low_text}"
    major, minor, patch, pre = high.groups(default="")
    if _is_wild(major):
        high_bound = ""
    elif _is_wild(minor):
        high_bound = f"<{int(major) + 1}.0.0-0"
    elif _is_wild(patch):
        high_bound = f"<{major}.{int(minor) + 1}.0-0"
    elif pre:
        high_bound = f"<={major}.{minor}.{patch}-{pre}"
    else:
        high_bound = f"<={high_text}"
    return f"{low_bound} {high_bound}".strip(" ")


def _caret_bounds(major: str, minor: str, patch: str, pre: str) -> list[str]:
    """`^M.m.p`: allow changes that keep the left-most non-zero part (`^0.2.3` := `>=0.2.3 <0.3.0-0`)."""
    if _is_wild(major):
        return [""]
    if _is_wild(minor):
        return [f">={major}.0.0", f"<{int(major) + 1}.0.0-0"]
    if _is_wild(patch):
        upper = f"<{major}.{int(minor) + 1}.0-0" if major == "0" else f"<{int(major) + 1}.0.0-0"
        return [f">={major}.{minor}.0", upper]
    lower = f">={major}.{minor}.{patch}" + (f"-{pre}" if pre else "")
    if major != "0":
        upper = f"<{int(major) + 1}.0.0-0"
    elif minor != "0":
        upper = f"<0.{int(minor) + 1}.0-0"
    else:
        upper = f"<0.0.{int(patch) + 1}-0"
    return [lower, upper]


def _tilde_bounds(major: str, minor: str, patch: str, pre: str) -> list[str]:
    """`~M.m.p`: patch-level changes if a minor is given (`~1.2.3` := `>=1.2.3 <1.3.0-0`), else minor."""
    if _is_wild(major):
        return [""]
    if _is_wild(minor):
        return [f">={major}.0.0", f"<{int(major) + 1}.0.0-0"]
    upper = f"<{major}.{int(minor) + 1}.0-0"
    if _is_wild(patch):
        return [f">={major}.{minor}.0", upper]
    return [f">={major}.{minor}.{patch}" + (f"-{pre}" if pre else ""), upper]


def _x_range_bounds(text: str, match: re.Match[str]) -> list[str]:
    """`1.x`, `1.2`, `*`, `>1.2`, `<=1.x`: a comparator whose version has wildcards or missing parts.

    A complete version (no wildcard) is left as written for the primitive-comparator step.
    """
    op, major, minor, patch, _pre = match.groups(default="")
    if (_is_wild(major) and not _is_wild(minor)) or (_is_wild(minor) and not _is_wild(patch)):
        raise ValueError(f'"{text}": a number cannot follow a wildcard (x, X or *)')
    if not _is_wild(patch):
        return [text]
    if op == "=":
        op = ""
    if _is_wild(major):
        # `<*` and `>*` can be satisfied by nothing; `*`, `>=*`, `<=*` by anything.
        return [_NULL_SET_TEXT] if op in ("<", ">") else [""]
    if op:
        wild_minor = _is_wild(minor)
        low_major, low_minor = int(major), 0 if wild_minor else int(minor)
        suffix = ""
        if op == ">":  # >1 := >=2.0.0, >1.2 := >=1.3.0
            op = ">="
            low_major, low_minor = (low_major + 1, 0) if wild_minor else (low_major, low_minor + 1)
        elif op == "<=":  # <=1.2 := <1.3.0-0
            op = "<"
            low_major, low_minor = (low_major + 1, 0) if wild_minor else (low_major, low_minor + 1)
        if op == "<":
            suffix = "-0"
        return [f"{op}{low_major}.{low_minor}.0{suffix}"]
    if _is_wild(minor):
        return [f">={major}.0.0", f"<{int(major) + 1}.0.0-0"]
    return [f">={major}.{minor}.0", f"<{major}.{int(minor) + 1}.0-0"]


def _desugar(piece: str) -> list[str]:
    """One space-free comparator → primitive comparator texts ("" meaning any)."""
    match = _CARET.fullmatch(piece)
    if match:
        return _caret_bounds(*match.groups(default=""))
    match = _TILDE.fullmatch(piece)
    if match:
        return _tilde_bounds(*match.groups(default=""))
    match = _X_RANGE.fullmatch(piece)
    texts = _x_range_bounds(piece, match) if match else [piece]
    # node deletes one leftover `*` (`*`, `>=*`, ...) from what it could not read as an x-range.
    return [_STRAY_STAR.sub("", t, count=1) if "*" in t else t for t in texts]


@functools.lru_cache(maxsize=4096)
def _comparator(text: str) -> _Comparator | None:
    """A primitive comparator text → a comparator; "" (and `>=0.0.0`, which node folds) → None = any.
    Cached: desugared bounds such as `<2.0.0-0` recur across many ranges."""
    if text == "" or text == ">=0.0.0":
        return None
    match = _PRIMITIVE.fullmatch(text)
    if match is None:
        raise ValueError(f'"{text}" is not a comparator')
    op, version_text = match.group(1), match.group(2)
    if len(version_text) > MAX_LENGTH:
        raise ValueError(f"version in {text!r} is longer than {MAX_LENGTH} characters")
    full = _FULL_VERSION.fullmatch(version_text)
    assert full is not None  # _PRIMITIVE only matches full versions
    version = _version_from_match(full)
    return _Comparator("" if op == "=" else op, version)


def _comparator_set(text: str) -> list[_Comparator] | None:
    """One `||` alternative → its comparators, deduplicated in order; None when it allows any version."""
    if "+" in text:
        text = _BUILD_ANYWHERE.sub("", text)
    if " - " in text and _HYPHEN_RANGE.fullmatch(text):
        text = _hyphen_bounds(text)
    if " " in text:  # the three rewrites below only ever remove a space
        text = _OPERATOR_SPACE.sub(_keep_all_but_space, text)
        text = _TILDE_SPACE.sub(r"\1~", text)
        text = _CARET_SPACE.sub(r"\1^", text)
    comparators: dict[str, _Comparator] = {}
    any_seen = False
    for piece in text.split(" "):
        for primitive in _desugar(piece):
            for part in primitive.split(" ") if primitive else [""]:
                comparator = _comparator(part)
                if comparator is None:
                    any_seen = True
                else:
                    comparators.setdefault(str(comparator), comparator)
    if _NULL_SET_TEXT in comparators:
        return [comparators[_NULL_SET_TEXT]]
    if not comparators:
        assert any_seen
        return None
    return list(comparators.values())


def _keep_all_but_space(match: re.Match[str]) -> str:
    """Replacement for `_OPERATOR_SPACE`: the leading space, the operator and the version, joined."""
    return match.group(1) + match.group(2) + match.group(3)


def _build_range(raw: str) -> Range:
    """The whole pipeline; see the module docstring."""
    collapsed = " ".join(_JS_SPACE_RUN.split(_js_trim(raw)))
    sets = [_comparator_set(_js_trim(alternative)) for alternative in collapsed.split("||")]
    if len(sets) > 1:
        # Sets nothing satisfies are dropped (unless all are), and a set that allows any release makes
        # the whole range `*` -- which then allows no prerelease, even one another set named.
        useful = [s for s in sets if s is None or str(s[0]) != _NULL_SET_TEXT]
        sets = useful or sets[:1]
        if any(s is None for s in sets):
            sets = [None]
    return Range(raw, [s or () for s in sets])


@functools.lru_cache(maxsize=8192)
def _range_or_error(text: str) -> Range | InvalidRange:
    """Cache both outcomes: an invalid range in a recipe is asked about as often as a valid one."""
    try:
        return _build_range(text)
    except ValueError as error:
        return InvalidRange(text, str(error))


def parse_range(text: str) -> Range:
    """Parse an npm range once (cached); raises InvalidRange (a ValueError) with a readable reason
    where node-semver's `validRange` returns null."""
    if not isinstance(text, str):
        raise InvalidRange(repr(text), f"a range must be a string, not {type(text).__name__}")
    result = _range_or_error(text)
    if isinstance(result, InvalidRange):
        raise InvalidRange(result.text, result.detail)  # a fresh exception: no shared traceback
    return result


def is_valid_range(text: str) -> bool:
    """True when `parse_range` accepts the text."""
    try:
        parse_range(text)
    except ValueError:
        return False
    return True


def valid_range(text: str) -> str | None:
    """node-semver's `validRange()`: the desugared range, or None when it is invalid."""
    try:
        return str(parse_range(text))
    except ValueError:
        return None


def satisfies(version: str | Version, requirement: str | Range) -> bool:
    """Does the version satisfy the npm range? Unlike node (which answers false), an invalid version
    or range raises ValueError: a typo in a recipe must not read as "no version fits"."""
    parsed_version = version if isinstance(version, Version) else parse_version(version)
    parsed_range = requirement if isinstance(requirement, Range) else parse_range(requirement)
    return parsed_range.allows(parsed_version)
