"""The state database: schema migrations, atomic root-set changes, what a deployment records."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import Nucleus

from nucleus.state import MIGRATIONS, SCHEMA_VERSION, RootRecord, State, StateError


def test_a_version_1_database_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(MIGRATIONS[1] + "PRAGMA user_version = 1;")
        db.execute("INSERT INTO components (name, version, state, updated_at) VALUES ('a', '1.0.0', 'RUNNING', 'x')")
    state = State(path)
    try:
        (record,) = state.components()
        assert (record.name, record.state, record.configuration) == ("a", "RUNNING", "{}")
    finally:
        state.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_newer_schema_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StateError) as caught:
        State(path)
    assert "newer than this nucleus knows" in str(caught.value)


def test_a_corrupt_database_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError) as caught:
        State(path)
    assert "the state database cannot be used" in str(caught.value) and "move it aside" in str(caught.value)


def test_roots_change_with_the_deployment_outcome_in_one_transaction(tmp_path: Path) -> None:
    state = State(tmp_path / "state.sqlite")
    try:
        deployment = state.begin_deployment("daemon", {"paths": ["a.yaml"]}, [RootRecord("old", "1.0.0", "p")])
        assert [d.status for d in state.deployments()] == ["IN_PROGRESS"]
        state.set_roots([RootRecord("a", "2.0.0", "q")], deployment, "SUCCEEDED")
        assert state.roots() == [RootRecord("a", "2.0.0", "q")]
        assert [d.status for d in state.deployments()] == ["SUCCEEDED"]
        assert state.deployment_previous_roots(deployment) == [RootRecord("old", "1.0.0", "p")]
    finally:
        state.close()


def test_a_deploy_records_the_configuration_it_ran_with(nucleus: Nucleus) -> None:
    recipe = nucleus.recipe("com.example.Cfg", "Run: echo {configuration:/Greeting}", extra="""
        ComponentConfiguration:
          DefaultConfiguration: {Greeting: hi, Nested: {n: 1}}
    """)
    assert nucleus.run("deploy", str(recipe)).code == 0
    with sqlite3.connect(nucleus.root / "config" / "state.sqlite") as db:
        (configuration,) = db.execute("SELECT configuration FROM components").fetchone()
    assert json.loads(configuration) == {"Greeting": "hi", "Nested": {"n": 1}}


def test_a_corrupt_state_from_the_cli_is_exit_2(nucleus: Nucleus) -> None:
    (nucleus.root / "config").mkdir(parents=True)
    (nucleus.root / "config" / "state.sqlite").write_bytes(b"garbage" * 500)
    result = nucleus.run("deploy", str(nucleus.recipe("com.example.X", "Run: 'true'")))
    assert result.code == 2 and "the state database cannot be used" in result.err
    assert "Traceback" not in result.err
