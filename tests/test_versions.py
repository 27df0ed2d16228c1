"""nucleus.versions against node-semver's own answers (tests/data/semver/, made by node-semver 7.8.6).

Each test walks one category of cases and collects every mismatch, so a failure shows the whole picture
(the first 20) instead of stopping at the first. No node, no network: the answers are stored data.
Where node answers `false` because a range or version is invalid, we must raise ValueError instead.
"""

from __future__ import annotations

import functools
import json
import pickle
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nucleus.versions import (
    InvalidRange,
    InvalidVersion,
    Range,
    Version,
    compare,
    is_valid_range,
    is_valid_version,
    parse_range,
    parse_version,
    satisfies,
    valid,
    valid_range,
)

DATA = Path(__file__).parent / "data" / "semver"

Case = dict[str, Any]


@functools.cache
def cases() -> dict[str, Any]:
    return json.loads((DATA / "node-semver-cases.json").read_text(encoding="utf-8"))


@functools.cache
def fuzz() -> dict[str, Any]:
    return json.loads((DATA / "node-semver-fuzz-cases.json").read_text(encoding="utf-8"))


def assert_none(mismatches: list[str], checked: int) -> None:
    """Fail with the count and the first 20 mismatches."""
    assert checked > 0, "no case was checked"
    shown = "\n".join(mismatches[:20])
    assert not mismatches, f"{len(mismatches)} of {checked} cases differ from node-semver:\n{shown}"


def is_default(options: dict[str, Any]) -> bool:
    """node-semver's default options: neither `loose` nor `includePrerelease`."""
    return not options.get("loose") and not options.get("includePrerelease")


def default_only(entries: Iterable[Case]) -> tuple[list[Case], int]:
    """The entries with default options, and how many were skipped (checked against the data's flag)."""
    kept, skipped, flagged = [], 0, 0
    for entry in entries:
        # Version-validity entries carry no flag; their options say it all.
        flagged += entry.get("default_options", is_default(entry["options"])) is False
        if is_default(entry["options"]):
            kept.append(entry)
        else:
            skipped += 1
    assert skipped == flagged, "the options disagree with the default_options flag"
    return kept, skipped


def our_satisfies(version: str, range_text: str) -> bool | str:
    """True/False, or "raised" when we refuse the version or range."""
    try:
        return satisfies(version, range_text)
    except ValueError:
        return "raised"


def check_satisfies(entries: Iterable[Case]) -> tuple[list[str], int]:
    mismatches, checked = [], 0
    for entry in entries:
        checked += 1
        got = our_satisfies(entry["version"], entry["range"])
        if got == "raised":
            # node says false for an invalid range or version; we must refuse exactly those.
            node_refuses = valid_range(entry["range"]) is None or valid(entry["version"]) is None
            if entry["expected"] is not False or not node_refuses:
                mismatches.append(f"{entry['id']}: satisfies({entry['version']!r}, {entry['range']!r}) raised")
        elif got != entry["expected"]:
            mismatches.append(f"{entry['id']}: satisfies({entry['version']!r}, {entry['range']!r}) = {got}")
    return mismatches, checked


# -- the fixture categories -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "range-include",
        "range-exclude",
        "version-gt-range",
        "version-not-gt-range",
        "version-lt-range",
        "version-not-lt-range",
    ],
)
def test_satisfies_fixture_category(source: str) -> None:
    entries, _ = default_only(e for e in cases()["satisfies"] if e["source"] == source)
    assert_none(*check_satisfies(entries))


def test_skipped_fixture_entries_are_exactly_the_non_default_ones() -> None:
    data = cases()
    keys = ("satisfies", "valid_range", "compare")
    skipped = sum(default_only(data[key])[1] for key in keys)
    flagged = sum(1 for key in keys for e in data[key] if not e["default_options"])
    assert skipped == flagged
    # The data as shipped: 67 loose/includePrerelease satisfies entries, 22 range-parse, 46 compare,
    # and 2 version-validity entries (loose) that carry no flag.
    assert [default_only(data[key])[1] for key in (*keys, "valid_version")] == [67, 22, 46, 2]


def test_range_parse_fixtures() -> None:
    entries, _ = default_only(cases()["valid_range"])
    mismatches = []
    for entry in entries:
        got = valid_range(entry["range"])
        if got != entry["expected_canonical"]:
            mismatches.append(f"validRange({entry['range']!r}) = {got!r}, node: {entry['expected_canonical']!r}")
        if not entry["expected_valid"] and is_valid_range(entry["range"]):
            mismatches.append(f"{entry['range']!r} should be invalid")
    assert_none(mismatches, len(entries))


@pytest.mark.parametrize("source", ["comparisons", "equality"])
def test_compare_fixtures(source: str) -> None:
    entries, _ = default_only(e for e in cases()["compare"] if e["source"] == source)
    mismatches = []
    for entry in entries:
        got = compare(entry["a"], entry["b"])
        if got != entry["expected"]:
            mismatches.append(f"compare({entry['a']!r}, {entry['b']!r}) = {got}, node: {entry['expected']}")
        flipped = compare(entry["b"], entry["a"])
        if flipped != -entry["expected"]:
            mismatches.append(f"compare({entry['b']!r}, {entry['a']!r}) = {flipped}, expected {-entry['expected']}")
    assert_none(mismatches, len(entries))


@pytest.mark.parametrize("source", ["valid-versions", "invalid-versions"])
def test_version_validity_fixtures(source: str) -> None:
    entries, _ = default_only(e for e in cases()["valid_version"] if e["source"] == source)
    mismatches = []
    for entry in entries:
        got = valid(entry["version"])
        if got != entry["expected"]:
            mismatches.append(f"valid({entry['version'][:40]!r}) = {got!r}, node: {entry['expected']!r}")
        if entry["expected"] is None and is_valid_version(entry["version"]):
            mismatches.append(f"{entry['version'][:40]!r} should be refused")
    assert_none(mismatches, len(entries))


def test_cross_matrix_of_ranges_and_versions() -> None:
    cross = cases()["cross"]
    mismatches, checked = [], 0
    for version in cross["versions"]:
        if is_valid_version(version["version"]) != version["valid"]:
            mismatches.append(f"version {version['version']!r}: valid should be {version['valid']}")
    for row, entry in zip(cross["matrix"], cross["ranges"], strict=True):
        text = entry["range"]
        if valid_range(text) != entry["canonical"]:
            mismatches.append(f"validRange({text!r}) = {valid_range(text)!r}, node: {entry['canonical']!r}")
        for cell, version in zip(row, cross["versions"], strict=True):
            checked += 1
            got = our_satisfies(version["version"], text)
            expected = cell == "1"
            if got == "raised":
                if expected or (entry["valid"] and version["valid"]):
                    mismatches.append(f"satisfies({version['version']!r}, {text!r}) raised")
            elif got != expected:
                mismatches.append(f"satisfies({version['version']!r}, {text!r}) = {got}, node: {expected}")
    assert_none(mismatches, checked)


def test_every_range_node_rejects_raises_value_error() -> None:
    rejected = [e["range"] for e in cases()["cross"]["ranges"] if not e["valid"]]
    rejected += [e["range"] for e in fuzz()["cases"] if e["valid_range"] is None]
    rejected += [e["range"] for e in cases()["valid_range"] if is_default(e["options"]) and not e["expected_valid"]]
    mismatches = []
    for text in rejected:
        try:
            parse_range(text)
        except InvalidRange as error:
            assert isinstance(error, ValueError) and error.detail
        else:
            mismatches.append(f"{text!r} parsed, node rejects it")
    assert len(rejected) > 5000
    assert_none(mismatches, len(rejected))


def test_fuzz_corpus() -> None:
    """20,000 generated ranges: node's desugared form (or null) for each, and its answer for 8 versions."""
    mismatches, checked = [], 0
    corpus = fuzz()["cases"]
    for entry in corpus:
        text = entry["range"]
        got_range = valid_range(text)
        if got_range != entry["valid_range"]:
            mismatches.append(f"validRange({text!r}) = {got_range!r}, node: {entry['valid_range']!r}")
        for version, expected in zip(entry["versions"], entry["expected"], strict=True):
            checked += 1
            got = our_satisfies(version, text)
            if got == "raised":
                if expected or entry["valid_range"] is not None:
                    mismatches.append(f"satisfies({version!r}, {text!r}) raised")
            elif got != expected:
                mismatches.append(f"satisfies({version!r}, {text!r}) = {got}, node: {expected}")
    assert (len(corpus), checked) == (20000, 160000)
    assert_none(mismatches, checked)


# -- the API ------------------------------------------------------------------------------------------


def test_version_fields_order_and_normal_form() -> None:
    version = parse_version(" v1.2.3-beta.11+build.7 ")
    assert (version.major, version.minor, version.patch) == (1, 2, 3)
    assert version.prerelease == ("beta", 11)
    assert version.build == ("build", "7")
    assert str(version) == "1.2.3-beta.11+build.7"
    assert valid(" v1.2.3-beta.11+build.7 ") == "1.2.3-beta.11"
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
               "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0"]  # the SemVer 2.0 specification's example
    assert sorted(parse_version(v) for v in reversed(ordered)) == [parse_version(v) for v in ordered]
    assert parse_version("1.0.0+a") == parse_version("1.0.0+b")
    assert len({parse_version("1.0.0+a"), parse_version("1.0.0")}) == 1


def test_version_is_immutable_and_picklable() -> None:
    version = parse_version("1.2.3-rc.1")
    with pytest.raises(AttributeError):
        version.major = 2  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(version)) == version
    assert repr(version) == "Version('1.2.3-rc.1')"


@pytest.mark.parametrize(
    "text",
    ["1.2", "01.2.3", "1.2.3-01", "=1.2.3", "V1.2.3", "1.2.3.4", "", "1.2.3-", "9007199254740992.0.0", "1" * 300],
)
def test_invalid_versions_raise_with_a_reason(text: str) -> None:
    with pytest.raises(InvalidVersion) as caught:
        parse_version(text)
    assert caught.value.detail and isinstance(caught.value, ValueError)
    with pytest.raises(ValueError):
        satisfies(text, "*")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1.x.5", "cannot follow a wildcard"),
        (">=", "is not a comparator"),
        ("latest", "is not a comparator"),
        ("^9007199254740991.0.0", "9007199254740992"),
    ],
)
def test_invalid_ranges_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidRange) as caught:
        satisfies("1.0.0", text)
    assert reason in str(caught.value)
    assert caught.value.text == text


def test_ranges_are_parsed_once() -> None:
    assert parse_range("^1.2.3 || ~2.0") is parse_range("^1.2.3 || ~2.0")
    with pytest.raises(InvalidRange):
        parse_range("1.x.5")
    with pytest.raises(InvalidRange):  # the cached refusal raises again, afresh
        parse_range("1.x.5")


@pytest.mark.parametrize(
    ("version", "text", "expected"),
    [
        ("2.0.0-beta", "*", False),  # classic Greengrass says yes
        ("2.0.0-beta", ">=1.0.0", False),  # classic Greengrass says yes
        ("1.0.1", ">1.0", False),  # `>1.0` is `>=1.1.0`, not `>1.0.0`
        ("1.1.0", ">1.0", True),
        ("1.2.3-beta.4", "^1.2.3-beta.2", True),
        ("1.2.4-beta.4", "^1.2.3-beta.2", False),
        ("1.2.3-beta", "* || 1.2.3-beta", False),  # node: a `*` set swallows the whole union
        ("1.2.3", ">= 1.2.3", True),
        ("1.2.3", "", True),
    ],
)
def test_semantics_worth_knowing(version: str, text: str, expected: bool) -> None:
    assert satisfies(version, text) is expected
    assert parse_range(text).allows(parse_version(version)) is expected


def test_range_objects_and_versions_are_accepted_directly() -> None:
    caret = parse_range("^1.2.0")
    assert isinstance(caret, Range) and str(caret) == ">=1.2.0 <2.0.0-0"
    assert satisfies(parse_version("1.9.0"), caret)
    assert parse_version("2.0.0") not in caret and parse_version("1.2.0") in caret


versions_strategy = st.builds(
    lambda core, pre: f"{core[0]}.{core[1]}.{core[2]}" + (f"-{pre}" if pre else ""),
    st.tuples(*[st.integers(0, 12)] * 3),
    st.sampled_from(["", "0", "1", "alpha", "alpha.1", "beta.2", "rc.10"]),
)


@given(versions_strategy, versions_strategy)
def test_ordering_agrees_with_compare(a: str, b: str) -> None:
    va, vb = parse_version(a), parse_version(b)
    assert (va < vb) == (compare(a, b) < 0)
    assert (va == vb) == (compare(a, b) == 0) == (a == b)
    assert str(va) == a


@given(versions_strategy, st.sampled_from(["<", "<=", ">", ">=", "="]), versions_strategy)
def test_primitive_comparators_follow_precedence(version: str, op: str, bound: str) -> None:
    ops: dict[str, Callable[[Version, Version], bool]] = {
        "<": Version.__lt__, "<=": Version.__le__, ">": Version.__gt__, ">=": Version.__ge__, "=": Version.__eq__,
    }
    v, b = parse_version(version), parse_version(bound)
    prerelease_ok = not v.prerelease or (b.prerelease != () and v.core == b.core)
    assert satisfies(version, f"{op}{bound}") == (ops[op](v, b) and prerelease_ok)
