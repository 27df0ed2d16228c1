"""The configuration store's pure core: tree, pointers, timestamps, deployments, changes, IPC rules, rendering.

Plain data in, plain data out. Each expectation that mirrors classic Greengrass names the classic source in
the module docstrings of nucleus/configuration/; the hypothesis properties check the rules on generated trees.
"""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nucleus.configuration as configuration
from nucleus.configuration import (
    CONDITION_FAILED,
    Branch,
    ConfigurationError,
    ConfigurationUpdate,
    Leaf,
    apply_configuration,
    changes,
    check_reset,
    configuration_problems,
    deploy_configuration,
    empty,
    find,
    format_pointer,
    from_json,
    get_configuration,
    interpolation_text,
    is_index_token,
    java_double,
    leaves,
    merge,
    parse_pointer,
    read,
    read_pointer,
    remove,
    render_value,
    replace,
    reset,
    resolve_configuration,
    same_content,
    to_json,
    update_configuration,
)
from nucleus.errors import Kind

PROPERTIES = settings(max_examples=100, deadline=None)


def stamps(tree: Branch) -> dict[tuple[str, ...], int]:
    return {path: leaf.modtime for path, leaf in leaves(tree)}


def shown(tree: Branch, **options: bool) -> Any:
    """`to_json`, typed loosely for indexing in assertions."""
    return to_json(tree, **options)


def modtime(tree: Branch, *path: str) -> int:
    node = find(tree, path)
    assert node is not None
    return node.modtime


# ── pointers ──────────────────────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("pointer, tokens", [
    ("", ()), ("/", ("",)), ("/a/b", ("a", "b")), ("/a~1b", ("a/b",)), ("/m~0n", ("m~n",)),
    ("/~01", ("~1",)), ("/a//b", ("a", "", "b")), ("/0/-", ("0", "-")),
])
def test_parse_pointer(pointer: str, tokens: tuple[str, ...]) -> None:
    assert parse_pointer(pointer) == tokens
    assert format_pointer(tokens) == pointer


@pytest.mark.parametrize("pointer, hint", [("a/b", "write '/a/b'"), ("/a~2", "~0"), ("/a~", "~0")])
def test_malformed_pointer_is_an_error_naming_it(pointer: str, hint: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_pointer(pointer)
    assert caught.value.code == "invalid-pointer" and caught.value.pointer == pointer
    assert str(caught.value).startswith(f"configuration '{pointer}': ") and hint in str(caught.value)


@pytest.mark.parametrize("token, index", [
    ("0", True), ("7", True), ("2147483647", True), ("01", False), ("-", False), ("", False),
    ("2147483648", False), ("12345678901", False), ("1a", False), ("\u0661", False), ("-1", False),
])
def test_index_tokens_follow_jacksons_rule(token: str, index: bool) -> None:
    assert is_index_token(token) is index


@given(st.lists(st.text(max_size=6), max_size=5))
def test_pointer_round_trip(path: list[str]) -> None:
    assert parse_pointer(format_pointer(path)) == tuple(path)


# ── the tree ──────────────────────────────────────────────────────────────────────────────────────────────

SAMPLE = {"port": 8883, "mqtt": {"host": "h", "topics": ["a", {"q": 1}]}, "_private": 1, "Empty": {}}


def test_reads_by_key_path_are_case_insensitive() -> None:
    tree = from_json(SAMPLE, 5)
    assert read(tree, ["PORT"]) == 8883
    assert read(tree, ["Mqtt", "HOST"]) == "h"
    assert read(tree, []) == {"Empty": {}, "mqtt": {"host": "h", "topics": ["a", {"q": 1}]}, "port": 8883}
    assert find(tree, ["mqtt", "host", "deeper"]) is None
    with pytest.raises(ConfigurationError) as caught:
        read(tree, ["mqtt", "nope"])
    assert caught.value.kind is Kind.NOT_FOUND and caught.value.pointer == "/mqtt/nope"


def test_reads_by_pointer_continue_into_leaf_values() -> None:
    tree = from_json(SAMPLE, 5)
    assert read_pointer(tree, "/MQTT/topics") == ["a", {"q": 1}]
    assert read_pointer(tree, "/mqtt/topics/1/q") == 1
    assert read_pointer(tree, "") == read(tree, [])
    for missing in ("/mqtt/topics/2", "/mqtt/topics/1/Q", "/mqtt/topics/01", "/port/x"):
        with pytest.raises(ConfigurationError) as caught:
            read_pointer(tree, missing)
        assert caught.value.code == "not-found" and caught.value.pointer == missing


def test_to_json_hides_underscore_keys_sorts_keys_and_copies() -> None:
    tree = from_json({"b": 1, "A": 2, "c": {"_x": 1, "Z": 2, "y": 3}, "_top": 4}, 1)
    assert list(shown(tree)) == ["A", "b", "c"]
    assert to_json(tree) == {"A": 2, "b": 1, "c": {"y": 3, "Z": 2}}
    assert to_json(tree, include_hidden=True) == {"_top": 4, "A": 2, "b": 1, "c": {"_x": 1, "y": 3, "Z": 2}}
    assert list(shown(tree)["c"]) == ["y", "Z"]
    listed = from_json({"l": [1, [2]]}, 1)
    shown(listed)["l"][1].append(3)
    assert to_json(listed) == {"l": [1, [2]]}


def test_keys_keep_their_first_spelling() -> None:
    tree = merge(from_json({"Port": 1}, 1), (), {"PORT": 2, "port2": {"A": 1}}, 2)
    tree = merge(tree, ("PORT2",), {"a": 5}, 3)
    assert to_json(tree) == {"Port": 2, "port2": {"A": 5}}


# ── writing with timestamps ───────────────────────────────────────────────────────────────────────────────

def test_an_older_update_is_refused_per_leaf_not_per_update() -> None:
    tree = merge(from_json({"a": 1, "b": 1}, 100), (), {"b": 9}, 300)
    after = merge(tree, (), {"a": 2, "b": 2, "c": 2}, 200)
    assert to_json(after) == {"a": 2, "b": 9, "c": 2}
    assert stamps(after) == {("a",): 200, ("b",): 300, ("c",): 200}


def test_same_value_at_a_newer_time_moves_only_the_time() -> None:
    tree = from_json({"a": 1}, 100)
    after = merge(tree, (), {"a": 1}, 200)
    assert stamps(after) == {("a",): 200} and changes(tree, after) == []
    assert merge(after, (), {"a": 1}, 200) is after


def test_an_update_at_the_same_time_wins() -> None:
    assert to_json(merge(from_json({"a": 1}, 100), (), {"a": 2}, 100)) == {"a": 2}


def test_lists_and_scalars_replace_maps_merge() -> None:
    tree = from_json({"l": [1, 2, 3], "m": {"x": 1, "y": 2}}, 1)
    after = merge(tree, (), {"l": [4], "m": {"y": 3, "z": 4}}, 2)
    assert to_json(after) == {"l": [4], "m": {"x": 1, "y": 3, "z": 4}}


def test_a_change_of_shape_wins_whatever_the_time() -> None:
    tree = from_json({"m": {"x": 1}, "s": "text"}, 500)
    after = merge(tree, (), {"m": "flat", "s": {"now": "a map"}}, 10)
    assert to_json(after) == {"m": "flat", "s": {"now": "a map"}}


def test_merge_at_a_path_creates_the_maps_on_it() -> None:
    tree = merge(from_json({"a": 1}, 1), ("x", "y"), [1], 7)
    assert to_json(tree) == {"a": 1, "x": {"y": [1]}}
    with pytest.raises(ConfigurationError) as caught:
        merge(tree, (), 5, 8)
    assert caught.value.code == "not-a-map" and caught.value.pointer == ""


def test_replace_removes_unnamed_keys_but_keeps_newer_leaves() -> None:
    tree = merge(from_json({"a": 1, "b": {"c": 1}, "d": 1}, 100), (), {"d": 2}, 900)
    after = replace(tree, {"a": 5, "d": 3, "e": 1}, 500)
    assert to_json(after) == {"a": 5, "d": 2, "e": 1}


def test_remove_with_and_without_a_timestamp() -> None:
    tree = from_json({"a": {"b": 1}, "c": 1}, 100)
    assert remove(tree, ["A", "b"], timestamp=50) is tree
    assert to_json(remove(tree, ["A", "b"], timestamp=150)) == {"a": {}, "c": 1}
    assert to_json(remove(tree, ["a"])) == {"c": 1}
    assert remove(tree, ["nope", "x"]) is tree and remove(tree, ["c", "x"]) is tree
    assert to_json(remove(tree, [])) == {}


def test_a_map_takes_the_time_of_its_newest_change() -> None:
    tree = from_json({"m": {"x": 1, "y": 1}}, 100)
    tree = merge(tree, ("m",), {"x": 2}, 300)
    assert [tree.modtime, modtime(tree, "m")] == [300, 300]
    tree = merge(tree, ("m",), {"y": 2}, 200)  # older than the map, newer than the leaf: newest child wins
    assert modtime(tree, "m") == 300
    tree = remove(tree, ["m", "x"], timestamp=400)  # a removal stamps the map with its time
    assert modtime(tree, "m") == 400 and tree.modtime == 400
    assert modtime(merge(tree, ("new",), {}, 450), "new") == 450


def test_nothing_to_do_returns_the_same_tree() -> None:
    tree = from_json(SAMPLE, 5)
    assert merge(tree, (), {"port": 8883, "mqtt": {"host": "h"}}, 5) is tree
    assert merge(tree, (), {"port": 1}, 4) is tree


# ── what a configuration may hold ─────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("value, pointer, code", [
    ({"a": {"Port": 1, "port": 2}}, "/a/port", "duplicate-key"),
    ({"x": float("nan")}, "/x", "invalid-value"),
    ({"x": [1, float("inf")]}, "/x/1", "invalid-value"),
    ({"a": {3: "three"}}, "/a", "invalid-key"),
    ({"a~b/c": {"d": object()}}, "/a~0b~1c/d", "invalid-value"),
    ({"s": "\ud800"}, "/s", "invalid-value"),
    ({"\udc00": 1}, "", "invalid-key"),
    ({"deep": json.loads("[" * 120 + "]" * 120)}, "/deep" + "/0" * 100, "too-deep"),
])
def test_what_a_configuration_may_not_hold(value: Any, pointer: str, code: str) -> None:
    problems = configuration_problems(value)
    assert [(p.pointer, p.code) for p in problems] == [(pointer, code)]
    with pytest.raises(ConfigurationError) as caught:
        from_json(value, 1)
    assert str(caught.value).startswith(f"configuration '{pointer}': ")


def test_what_a_configuration_may_hold() -> None:
    value: dict[str, Any] = {"n": None, "t": True, "i": 10**30, "f": -0.0, "s": "é☃😀",
                             "l": [{"A": 1, "a": 2}, []], "": {}}
    assert configuration_problems(value) == []
    assert to_json(from_json(value, 1)) == {"": {}, "f": -0.0, "i": 10**30, "l": [{"A": 1, "a": 2}, []],
                                            "n": None, "s": "é☃😀", "t": True}


def test_several_problems_are_all_reported() -> None:
    problems = configuration_problems({"a": float("nan"), "b": {"X": 1, "x": 2}, "c": [set()]})
    assert [p.pointer for p in problems] == ["/a", "/b/x", "/c/0"]


# ── a deployment ─────────────────────────────────────────────────────────────────────────────────────────

def test_reset_then_defaults_then_merge_in_classic_order() -> None:
    running = from_json({"a": "user", "b": "user", "keep": {"x": 1}, "list": [1, 2]}, 1000)
    defaults = {"a": "default", "b": "default", "c": "default", "list": [9]}
    update = ConfigurationUpdate(merge={"b": "merged", "keep": {"y": 2}}, reset=("/a", "/B", "/nothing/here"))
    assert resolve_configuration(running, defaults, update, 2000) == {
        "a": "default", "b": "merged", "c": "default", "keep": {"x": 1, "y": 2}, "list": [1, 2]}
    after = deploy_configuration(running, defaults, update, 2000)
    assert to_json(after) == resolve_configuration(running, defaults, update, 2000)
    assert set(stamps(after).values()) == {2000}  # every leaf takes the deployment's time, defaults too


def test_reset_of_everything() -> None:
    running = from_json({"a": 1, "b": {"c": 2}}, 1000)
    update = ConfigurationUpdate(merge={"z": 1}, reset=("", "/b"))
    assert resolve_configuration(running, {"a": 0}, update, 2000) == {"a": 0, "z": 1}
    assert to_json(reset(running, [""])) == {}


@pytest.mark.parametrize("pointer, hint", [("/list/0", "'/list'"), ("/a/12/b", "'/a'"), ("/0", "''")])
def test_reset_of_a_list_element_is_an_error_naming_the_pointer(pointer: str, hint: str) -> None:
    running = from_json({"list": [1, 2], "a": {"12": {"b": 1}}, "0": 1}, 1)  # even where "12" is a map key
    with pytest.raises(ConfigurationError) as caught:
        deploy_configuration(running, {}, ConfigurationUpdate(reset=("", pointer)), 2)
    assert caught.value.code == "reset-list-element" and caught.value.pointer == pointer
    assert caught.value.kind is Kind.INVALID and hint in str(caught.value)


def test_reset_pointers_are_checked_up_front() -> None:
    assert check_reset(["", "/a~1b/c"]) == [(), ("a/b", "c")]
    with pytest.raises(ConfigurationError) as caught:
        check_reset(["/ok", "no-slash"])
    assert caught.value.code == "invalid-pointer"


def test_defaults_fill_what_is_missing_and_keep_what_is_there() -> None:
    running = from_json({"a": "mine", "m": {"x": "mine"}}, 500)
    after = deploy_configuration(running, {"a": "d", "m": {"x": "d", "y": "d"}, "n": {"z": "d"}}, None, 600)
    assert to_json(after) == {"a": "mine", "m": {"x": "mine", "y": "d"}, "n": {"z": "d"}}


def test_a_new_component_gets_its_defaults_then_the_merge() -> None:
    after = deploy_configuration(None, {"a": 1, "b": {"c": 2}}, ConfigurationUpdate(merge={"b": {"d": 3}}), 77)
    assert to_json(after) == {"a": 1, "b": {"c": 2, "d": 3}}
    assert set(stamps(after).values()) == {77}
    assert to_json(deploy_configuration(None, None, None, 1)) == {}


def test_keys_an_older_default_had_stay_until_reset() -> None:
    v1 = deploy_configuration(None, {"a": 1, "gone": 1}, None, 100)
    v2 = deploy_configuration(v1, {"a": 1}, None, 200)
    assert to_json(v2) == {"a": 1, "gone": 1}
    assert to_json(deploy_configuration(v2, {"a": 1}, ConfigurationUpdate(reset=("",)), 300)) == {"a": 1}


def test_a_changed_default_reaches_a_deployed_key_only_through_reset() -> None:
    v1 = deploy_configuration(None, {"timeout": 5}, None, 100)
    assert to_json(deploy_configuration(v1, {"timeout": 10}, None, 200)) == {"timeout": 5}
    reset_it = ConfigurationUpdate(reset=("/timeout",))
    assert to_json(deploy_configuration(v1, {"timeout": 10}, reset_it, 200)) == {"timeout": 10}


def test_defaults_replace_a_value_of_another_shape_as_classic_does() -> None:
    running = from_json({"mqtt": "off", "tls": {"on": True}}, 500)
    after = deploy_configuration(running, {"mqtt": {"port": 8883}, "tls": False}, None, 600)
    assert to_json(after) == {"mqtt": {"port": 8883}, "tls": False}


def test_a_leaf_written_after_the_deployment_was_created_survives_it() -> None:
    running = merge(from_json({"a": 1, "b": 1}, 100), (), {"a": "ipc"}, 5000)
    update = ConfigurationUpdate(merge={"a": "deployed", "b": "deployed"}, reset=())
    assert to_json(deploy_configuration(running, {}, update, 4000)) == {"a": "ipc", "b": "deployed"}
    reset_a = ConfigurationUpdate(reset=("/a",))
    assert to_json(deploy_configuration(running, {"a": 0}, reset_a, 4000)) == {"a": "ipc", "b": 1}
    assert to_json(deploy_configuration(running, {}, reset_a, 4000)) == {"b": 1}  # a removal is not checked


def test_underscore_keys_do_not_survive_a_deployment() -> None:
    running = merge(from_json({"a": 1}, 100), (), {"_scratch": 1}, 200)
    assert to_json(running, include_hidden=True) == {"_scratch": 1, "a": 1}
    assert to_json(deploy_configuration(running, {}, None, 300), include_hidden=True) == {"a": 1}


def test_merge_and_defaults_must_be_maps() -> None:
    cases: list[tuple[Any, Any, str]] = [(ConfigurationUpdate(merge=[1]), {}, "MERGE"),  # type: ignore[arg-type]
                                         (None, "x", "DefaultConfiguration")]
    for update, defaults, what in cases:
        with pytest.raises(ConfigurationError) as caught:
            resolve_configuration(None, defaults, update, 1)
        assert caught.value.code == "not-a-map" and what in str(caught.value)


def test_apply_alone_replaces_the_running_tree() -> None:
    running = from_json({"a": 1, "b": 2}, 10)
    assert to_json(apply_configuration(running, {"b": 3}, 20)) == {"b": 3}


# ── changes a subscriber is told about ────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("old, new, expected", [
    ({"a": 1}, {"a": 1}, []),
    ({"a": 1}, {"a": 2}, [("a",)]),
    ({"a": 1}, {"a": 1.0}, [("a",)]),
    ({"a": True}, {"a": 1}, [("a",)]),
    ({"a": [1, 2]}, {"a": [1, 2, 3]}, [("a",)]),
    ({"a": 1}, {"a": 1, "b": 2}, [("b",)]),
    ({"m": {"x": 1, "y": {"z": 1}}, "k": 1}, {"k": 1}, [("m",)]),
    ({"m": {"x": 1, "y": 2}}, {"m": "flat"}, [("m",)]),
    ({"s": "flat"}, {"s": {"x": 1, "y": {"z": 2}}}, [("s",), ("s", "x"), ("s", "y", "z")]),
    ({"a": 1}, {"a": 1, "new": {"empty": {}}}, []),
    ({"a": 1, "old": {}}, {"a": 1}, [("old",)]),
    ({"m": {"x": 1}}, {"m": {"x": 1, "y": 1}, "n": {"deep": [1]}}, [("m", "y"), ("n", "deep")]),
])
def test_changes_as_subscribers_see_them(old: dict[str, Any], new: dict[str, Any],
                                         expected: list[tuple[str, ...]]) -> None:
    assert changes(from_json(old, 1), from_json(new, 2)) == expected


def test_changes_use_the_stored_spelling() -> None:
    old = from_json({"Port": 1, "Gone": {"x": 1}}, 1)
    new = merge(remove(old, ["gone"]), (), {"PORT": 2}, 2)
    assert changes(old, new) == [("Port",), ("Gone",)]


# ── GetConfiguration and UpdateConfiguration ──────────────────────────────────────────────────────────────

def test_get_configuration_wraps_a_leaf_in_its_name() -> None:
    tree = from_json({"mqtt": {"Port": 1, "_h": 2}}, 1)
    assert get_configuration(tree, ["MQTT", "port"]) == {"Port": 1}
    assert get_configuration(tree, ["mqtt"]) == {"Port": 1}
    assert get_configuration(tree, []) == {"mqtt": {"Port": 1}}
    with pytest.raises(ConfigurationError) as caught:
        get_configuration(tree, ["mqtt", "nope"])
    assert caught.value.kind is Kind.NOT_FOUND and caught.value.message == "Key not found"


def test_a_stale_update_fails_its_check_but_what_it_could_apply_stays() -> None:
    tree = merge(from_json({"key1": 10, "key2": 10}, 100), (), {"key1": 20}, 1000)
    result = update_configuration(tree, [], {"key1": 30, "key2": 30, "key3": 30}, 990, now=2000)
    assert result.failed_condition_check and CONDITION_FAILED.startswith("Proposed timestamp is older")
    assert to_json(result.tree) == {"key1": 20, "key2": 30, "key3": 30}


def test_a_newer_update_passes_and_an_unrelated_newer_leaf_fails_it() -> None:
    tree = merge(from_json({"m": {"a": 1}, "other": 1}, 100), (), {"other": 2}, 900)
    inside = update_configuration(tree, ["m"], {"a": 2}, 500, now=2000)
    assert not inside.failed_condition_check and shown(inside.tree)["m"] == {"a": 2}
    at_root = update_configuration(tree, [], {"m": {"a": 3}}, 500, now=2000)
    assert at_root.failed_condition_check and shown(at_root.tree)["m"] == {"a": 3}


def test_an_update_of_a_new_path_uses_now_and_of_a_leaf_makes_it_a_map() -> None:
    tree = from_json({"leaf": 1}, 100)
    created = update_configuration(tree, ["new", "deeper"], {"k": 1}, 5, now=7000)
    assert not created.failed_condition_check
    assert stamps(created.tree)[("new", "deeper", "k")] == 7000
    grown = update_configuration(tree, ["leaf"], {"k": 1}, 5, now=7000)
    assert to_json(grown.tree) == {"leaf": {"k": 1}} and not grown.failed_condition_check


@pytest.mark.parametrize("key_path, value, code", [
    ([], {"accessControl": {}}, "restricted-key"),
    ([], {"AccessControl": {}}, "restricted-key"),
    (["accesscontrol", "x"], {"a": 1}, "restricted-key"),
    (["leaf", "under"], {"a": 1}, "not-a-map"),
    ([], None, "invalid-value"),
    ([], [1], "not-a-map"),
    (["m"], {"x": float("nan")}, "invalid-value"),
])
def test_refused_updates(key_path: list[str], value: object, code: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        update_configuration(from_json({"leaf": 1, "m": {}}, 1), key_path, value, 5, now=6)
    assert caught.value.code == code


# ── rendering {configuration:/…} ──────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("value, text", [
    ("plain text", "plain text"), ("", ""), ("é ☃ \n", "é ☃ \n"),
    (None, "null"), (True, "true"), (False, "false"),
    (0, "0"), (-5, "-5"), (10000000000, "10000000000"), (2**70, "1180591620717411303424"),
    (1.0, "1.0"), (-0.0, "-0.0"), (0.0, "0.0"), (100.0, "100.0"), (2.5, "2.5"), (0.1, "0.1"),
    (1e20, "1.0E20"), (1e7, "1.0E7"), (9999999.0, "9999999.0"), (12345678.9, "1.23456789E7"),
    (0.001, "0.001"), (0.0001, "1.0E-4"), (1.5e-5, "1.5E-5"), (-1e-10, "-1.0E-10"), (1e23, "1.0E23"),
    (5e-324, "4.9E-324"), (1.7976931348623157e308, "1.7976931348623157E308"), (1 / 3, "0.3333333333333333"),
    ({}, "{}"), ([], "[]"),
    ({"b": 1, "a": [1, 2.5, True, None]}, '{"a":[1,2.5,true,null],"b":1}'),
    ({"a": 1, "B": 2}, '{"a":1,"B":2}'),  # the tree's maps: case-insensitive order
    ([{"a": 1, "B": 2}], '[{"B":2,"a":1}]'),  # maps inside lists: code-unit order
    ({"z": {"y": 1, "X": 2}}, '{"z":{"X":2,"y":1}}'),
    ([{"\uffff": 1, "😀": 2}], '[{"😀":2,"\uffff":1}]'),  # UTF-16 order puts surrogates first
    ({"_hidden": 1, "shown": [{"_kept": 1}]}, '{"shown":[{"_kept":1}]}'),
    ([1.0, 1e20, -0.0, 10000000000], "[1.0,1.0E20,-0.0,10000000000]"),
    (["é☃😀", "a\"b\\c/d"], '["é☃😀","a\\"b\\\\c/d"]'),
    (["\b\t\n\f\r\x00\x1f\x7f"], '["\\b\\t\\n\\f\\r\\u0000\\u001F\x7f"]'),
])
def test_render_value(value: object, text: str) -> None:
    assert render_value(value) == text


def test_interpolation_text_follows_jacksons_at() -> None:
    config = {"mqtt": {"port": 8883, "Hosts": [{"b": 1, "A": {"d": 1, "C": 2}}]}, "_h": 1}
    assert interpolation_text(config, "/mqtt/port") == "8883"
    assert interpolation_text(config, "/mqtt/Hosts/0") == '{"A":{"C":2,"d":1},"b":1}'
    assert interpolation_text(config, "/mqtt/Hosts/0/A") == '{"C":2,"d":1}'
    assert interpolation_text(config, "") == '{"mqtt":{"Hosts":[{"A":{"C":2,"d":1},"b":1}],"port":8883}}'
    for missing in ("/mqtt/PORT", "/mqtt/Hosts/1", "/_h", "/mqtt/port/x"):
        assert interpolation_text(config, missing) is None
    with pytest.raises(ConfigurationError):
        interpolation_text(config, "mqtt/port")


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_java_double_reads_back_and_has_javas_shape(number: float) -> None:
    text = java_double(number)
    assert float(text) == number and math.copysign(1, float(text)) == math.copysign(1, number)
    assert re.fullmatch(r"-?(\d+\.\d+|\d\.\d+E-?\d+)", text)
    if "E" in text:
        assert not 1e-3 <= abs(number) < 1e7
    else:
        assert number == 0 or 1e-3 <= abs(number) < 1e7


# ── properties ────────────────────────────────────────────────────────────────────────────────────────────

KEYS = st.sampled_from(["a", "b", "c", "A", "Port", "port", "x/y", "~t", "_h", "", "é"])
LOWER_KEYS = st.sampled_from(["a", "b", "c", "d"])
SCALARS = (st.none() | st.booleans() | st.integers(-10**20, 10**20)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=4))
LEAVES = SCALARS | st.lists(SCALARS | st.dictionaries(st.text(max_size=2), SCALARS, max_size=2), max_size=3)


def distinct_ignoring_case(mapping: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in mapping.items():
        if key.lower() not in {k.lower() for k in result}:
            result[key] = value
    return result


def configs(keys: st.SearchStrategy[str] = KEYS) -> st.SearchStrategy[dict[str, Any]]:
    def maps(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
        return st.dictionaries(keys, inner, max_size=4).map(distinct_ignoring_case)
    return maps(st.recursive(LEAVES, maps, max_leaves=6))


@st.composite
def trees(draw: st.DrawFn, keys: st.SearchStrategy[str] = KEYS) -> Branch:
    """A tree written by a few merges at different times (all after the defaults' time 1)."""
    tree = from_json(draw(configs(keys)), draw(st.integers(2, 1000)))
    for _ in range(draw(st.integers(0, 2))):
        tree = merge(tree, (), draw(configs(keys)), draw(st.integers(2, 1000)))
    return tree


def visible(value: Any, in_list: bool = False) -> Any:
    """What `to_json` shows of a configuration: `_`-keys of the tree's own maps left out."""
    if isinstance(value, dict):
        return {k: visible(v, in_list) for k, v in value.items() if in_list or not k.startswith("_")}
    if isinstance(value, list):
        return [visible(v, True) for v in value]
    return value


def reference_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """The documented rule, written plainly (keys all lower-case here): maps merge, the rest replaces."""
    result = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = reference_merge(result[key], value)
        else:
            result[key] = value
    return result


def shape_conflict(defaults: Any, path: tuple[str, ...]) -> bool:
    """Whether the defaults put a map where the tree has a leaf, or a leaf on the way to it."""
    value = defaults
    for key in path:
        if not isinstance(value, dict):
            return True
        match = [v for k, v in value.items() if k.lower() == key.lower()]
        if not match:
            return False
        value = match[0]
    return isinstance(value, dict)


@PROPERTIES
@given(trees(), configs())
def test_defaults_never_change_an_existing_leaf_of_the_same_shape(tree: Branch, defaults: dict[str, Any]) -> None:
    after = merge(tree, (), defaults, configuration.DEFAULT_TIMESTAMP)
    for path, leaf in leaves(tree):
        if not shape_conflict(defaults, path):
            kept = find(after, path)
            assert isinstance(kept, Leaf) and kept.value is leaf.value and kept.modtime == leaf.modtime


@PROPERTIES
@given(trees(), configs())
def test_reset_then_the_same_defaults_restores_them(tree: Branch, defaults: dict[str, Any]) -> None:
    assert resolve_configuration(tree, defaults, ConfigurationUpdate(reset=("",)), 5000) == visible(defaults)
    for path, _ in leaves(from_json(defaults, 1)):
        if not any(key.startswith("_") or is_index_token(key) for key in path):
            pointer = format_pointer(path)
            resolved = resolve_configuration(tree, defaults, ConfigurationUpdate(reset=(pointer,)), 5000)
            assert read_pointer(from_json(resolved, 1), pointer) == read_pointer(from_json(defaults, 1), pointer)


@PROPERTIES
@given(trees(LOWER_KEYS), configs(LOWER_KEYS), configs(LOWER_KEYS))
def test_a_reset_deployment_holds_defaults_merged_with_merge(tree: Branch, defaults: dict[str, Any],
                                                             update: dict[str, Any]) -> None:
    after = deploy_configuration(tree, defaults, ConfigurationUpdate(merge=update, reset=("",)), 5000)
    assert same_content(after, from_json(reference_merge(defaults, update), 1))


@PROPERTIES
@given(trees(LOWER_KEYS), configs(LOWER_KEYS))
def test_a_newer_merge_matches_the_reference_and_an_older_one_only_changes_shapes(
        tree: Branch, update: dict[str, Any]) -> None:
    newer = merge(tree, (), update, 5000)
    assert same_content(newer, from_json(reference_merge(shown(tree, include_hidden=True), update), 1))
    older = merge(tree, (), update, 1)
    for path, leaf in leaves(tree):
        if not shape_conflict(update, path):
            assert find(older, path) is leaf


@PROPERTIES
@given(trees(), configs(), st.integers(1001, 3000))
def test_deploying_the_same_thing_twice_changes_nothing_the_second_time(
        tree: Branch, defaults: dict[str, Any], timestamp: int) -> None:
    update = ConfigurationUpdate(merge={"m": {"k": 1}}, reset=("/a",))
    once = deploy_configuration(tree, defaults, update, timestamp)
    twice = deploy_configuration(once, defaults, update, timestamp)
    assert changes(once, twice) == [] and to_json(twice, include_hidden=True) == to_json(once, include_hidden=True)


def leafless_maps_pruned(value: Any) -> Any:
    if isinstance(value, dict):
        pruned = {k: leafless_maps_pruned(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v != {} or not isinstance(value[k], dict)}
    return value


@PROPERTIES
@given(trees(), trees())
def test_changes_are_empty_exactly_when_the_trees_hold_the_same(a: Branch, b: Branch) -> None:
    assert changes(a, a) == []
    no_empty_maps = [from_json(leafless_maps_pruned(to_json(t, include_hidden=True)), 1) for t in (a, b)]
    assert (changes(*no_empty_maps) == []) == same_content(*no_empty_maps)
    reported = changes(a, b)
    for path, leaf in [*leaves(a), *leaves(b)]:
        there, here = find(a, path), find(b, path)
        if not (isinstance(there, Leaf) and isinstance(here, Leaf) and there.value == here.value
                and type(there.value) is type(here.value)):
            assert any(tuple(k.lower() for k in path[:len(p)]) == tuple(k.lower() for k in p) for p in reported)


@PROPERTIES
@given(configs())
def test_render_of_a_map_reads_back_as_what_the_tree_shows(config: dict[str, Any]) -> None:
    shown = to_json(from_json(config, 1))
    assert json.loads(render_value(shown)) == shown
    assert render_value(shown) == render_value(config)


# ── the package's shape ───────────────────────────────────────────────────────────────────────────────────

def test_public_surface() -> None:
    assert sorted(configuration.__all__) == sorted(
        ["CONDITION_FAILED", "DEFAULT_TIMESTAMP", "HIDDEN_PREFIX", "MAX_DEPTH", "RESTRICTED_KEYS", "Behaviour",
         "Branch", "ConfigurationError", "ConfigurationUpdate", "Json", "JsonMap", "KeyPath", "Leaf", "Node",
         "UpdateResult", "apply_configuration", "changes", "check_reset", "checked", "checked_map",
         "configuration_problems", "deploy_configuration", "empty", "find", "fold", "format_pointer",
         "from_json", "get_configuration", "interpolation_text", "is_index_token", "java_double", "leaves",
         "merge", "parse_pointer", "read", "read_pointer", "remove", "render_value", "replace", "reset",
         "resolve", "resolve_configuration", "same_content", "same_value", "to_json", "to_json_map",
         "update_configuration"])
    assert all(hasattr(configuration, name) for name in configuration.__all__)


def test_the_core_imports_nothing_that_does_io() -> None:
    allowed = {"__future__", "collections", "dataclasses", "decimal", "enum", "math", "re", "typing", "nucleus"}
    for module in Path(configuration.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name.split(".")[0] in allowed, f"{module.name} imports {name}"
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nucleus."):
                assert node.module in ("nucleus.errors",) or node.module.startswith("nucleus.configuration")
    assert isinstance(empty(), Branch)
