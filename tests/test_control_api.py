"""The daemon's handlers, driven without a socket: a request in, messages out through an in-memory channel.

The nucleus underneath is real (its kernel runs real steps); only the socket is left out — `test_daemon.py`
drives the same handlers through `nucleus start` as users do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from nucleus.config import NucleusConfig
from nucleus.control import BadRequest, decode_request
from nucleus.control_api import ControlAPI
from nucleus.paths import RootLayout
from nucleus.runtime import Runtime


class MemoryChannel:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.closed = asyncio.get_running_loop().create_future()

    def send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    def pending(self) -> int:
        return 0

    def wait_closed(self) -> Awaitable[None]:
        return self.closed

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("event") == kind]


def with_api(tmp_path: Path, scenario: Callable[[ControlAPI], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        runtime = Runtime(RootLayout(tmp_path / "root"), NucleusConfig(startup_settle_seconds=0.1))
        stopped: list[str] = []
        api = ControlAPI(runtime.layout, runtime.config, runtime.kernel, runtime.manager, stopped.append)
        try:
            await runtime.open()
            return await scenario(api)
        finally:
            await runtime.kernel.stop_all("test over")
            runtime.close()

    return asyncio.run(run())


def recipe(folder: Path, name: str, run: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(f"RecipeFormatVersion: '2020-01-25'\nComponentName: {name}\nComponentVersion: '1.0.0'\n"
                    f"Manifests:\n  - Lifecycle:\n      Run: {run}\n")
    return path


def request(line: str) -> dict[str, Any]:
    return decode_request(line.encode())


def test_a_deploy_streams_its_states_and_answers_a_typed_result(tmp_path: Path) -> None:
    path = recipe(tmp_path, "com.example.Once", "echo once")

    async def scenario(api: ControlAPI) -> tuple[MemoryChannel, dict[str, Any], dict[str, Any]]:
        channel = MemoryChannel()
        answer = await api.handle({"v": 1, "command": "deploy", "paths": [str(path)]}, channel)
        listed = await api.handle({"v": 1, "command": "list"}, MemoryChannel())
        return channel, answer, listed

    channel, answer, listed = with_api(tmp_path, scenario)
    assert answer["done"]["deployment"]["status"] == "SUCCEEDED"
    assert answer["done"]["deployment"]["kind"] is None and answer["done"]["lines"] == []
    assert [m["new"] for m in channel.events("state") if m["component"] == "com.example.Once"] == [
        "INSTALLED", "STARTING", "RUNNING", "FINISHED"]
    assert channel.events("deployment") == [{"event": "deployment", "id": 1}]
    assert listed["done"]["result"] == [{"builtin": False, "name": "com.example.Once", "state": "FINISHED",
                                         "version": "1.0.0"}]


def test_bad_input_is_an_answer_with_its_kind(tmp_path: Path) -> None:
    async def scenario(api: ControlAPI) -> list[dict[str, Any]]:
        channel = MemoryChannel()
        return [await api.handle({"v": 1, "command": "deploy", "paths": [str(tmp_path / "nope.yaml")]}, channel),
                await api.handle({"v": 1, "command": "stop", "name": "com.example.Nope"}, channel),
                await api.handle({"v": 1, "command": "remove", "name": "com.example.Nope"}, channel),
                await api.handle({"v": 1, "command": "fly"}, channel),
                await api.handle({"v": 1, "command": "deployments"}, channel)]

    deploy, stop, remove, unknown, history = with_api(tmp_path, scenario)
    assert deploy["done"]["deployment"]["status"] == "FAILED" and deploy["done"]["deployment"]["kind"] == "not-found"
    assert "nope.yaml: no such recipe file" in deploy["done"]["lines"][0]
    assert stop["done"]["exit"] == 2 and "no component 'com.example.Nope'" in stop["done"]["lines"][0]
    assert remove["done"]["exit"] == 2  # refused before it is queued: not a deployment
    assert unknown["done"] == {"exit": 2, "result": None, "lines": ["unknown command 'fly'"]}
    assert [d["status"] for d in history["done"]["result"]] == ["FAILED"]


def test_a_request_is_checked_before_any_handler_sees_it() -> None:
    for line, problem in [('{"v": 1, "command": "deploy", "paths": 5}', "paths must be a list of text"),
                          ('{"v": 1, "command": "logs"}', "logs: name is missing"),
                          ("[" * 5000 + "]" * 5000, "not JSON")]:
        try:
            request(line)
        except BadRequest as exc:
            assert problem in str(exc)
        else:
            raise AssertionError(f"accepted: {line[:40]}")


def test_logs_of_a_component_and_following_until_the_client_goes(tmp_path: Path) -> None:
    path = recipe(tmp_path, "com.example.Talk", "echo one; echo two")

    async def scenario(api: ControlAPI) -> tuple[list[str], list[str]]:
        await api.handle({"v": 1, "command": "deploy", "paths": [str(path)]}, MemoryChannel())
        tail = MemoryChannel()
        await api.handle({"v": 1, "command": "logs", "name": "com.example.Talk", "lines": 2}, tail)
        follower = MemoryChannel()
        following = asyncio.ensure_future(api.handle({"v": 1, "command": "logs", "name": "com.example.Talk",
                                                      "lines": 0, "follow": True}, follower))
        await asyncio.sleep(0)
        api.kernel.services["com.example.Talk"].log.line("run", "INFO", "three")
        follower.closed.set_result(None)
        await following
        return [m["line"] for m in tail.events("log")], [m["line"] for m in follower.events("log")]

    tail, followed = with_api(tmp_path, scenario)
    assert [line.split(" ", 3)[-1] for line in tail] == ["two", "state RUNNING -> FINISHED: run exited 0"]
    assert len(followed) == 1 and followed[0].endswith("INFO [run] three")
