"""Every performance figure of docs/performance.md, each measured beside its reference in the same run.

    python benchmarks/run.py                 # all figures, a table on stdout
    python benchmarks/run.py --json          # the same as JSON
    python benchmarks/run.py --write-docs    # also rewrite the table in docs/performance.md
    python benchmarks/run.py --only deploy respawn

Run it with the Python of the virtualenv the README's first command makes (`.venv/bin/python`): the
`nucleus` command next to it is what gets measured, installed as a user installs it. This machine is shared
and noisy, so every figure is a median of repeated runs and every goal compares figures taken in this same
run; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "benchmarks" / ".work"
DOCS = REPO / "docs" / "performance.md"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"


@dataclass
class Figure:
    name: str
    goal: str
    measured: str
    reference: str
    met: bool | None  # None: could not be measured here
    details: dict[str, Any] = field(default_factory=dict)


# -- helpers -------------------------------------------------------------------------------------------


def nucleus_command() -> list[str]:
    """The `nucleus` command installed beside this Python (what users run), else `python -m nucleus`."""
    script = Path(sys.executable).with_name("nucleus")
    if script.exists():
        return [str(script)]
    print("note: no installed `nucleus` beside this Python; measuring `python -m nucleus`", file=sys.stderr)
    return [sys.executable, "-m", "nucleus"]


def median_of(samples: list[float]) -> float:
    return statistics.median(samples)


def rss_kb(pid: int) -> int:
    match = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) if match else 0


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.02)


def recipe(path: Path, name: str, run: str, extra: str = "") -> Path:
    path.write_text(f"RecipeFormatVersion: '2020-01-25'\nComponentName: {name}\nComponentVersion: '1.0.0'\n"
                    f"{extra}Manifests:\n  - Lifecycle:\n      Run: {run}\n")
    return path


class Daemon:
    """`nucleus start` on a fresh root, for the figures that need one."""

    def __init__(self, root: Path, config: str = "", sandbox: bool = False) -> None:
        self.root = root
        self.args = ["--root", str(root)]
        if config:
            config_file = root.parent / f"{root.name}-config.yaml"
            config_file.write_text(config)
            self.args += ["--config", str(config_file)]
        command = nucleus_command() + self.args + ["start"] + (["--sandbox"] if sandbox else [])
        self.log = root.parent / f"{root.name}-daemon.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        wait_for(lambda: (root / "nucleus.sock").exists() or self.proc.poll() is not None, 120,
                 "the daemon's socket")
        if self.proc.poll() is not None:
            raise RuntimeError(f"`nucleus start` exited: {self.log.read_text()[-500:]}")
        time.sleep(0.3)  # let it settle to idle

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(nucleus_command() + self.args + list(args), capture_output=True, text=True,
                              timeout=timeout)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- 1. a one-line deploy against the Python floor ----------------------------------------------------


def figure_deploy(runs: int) -> Figure:
    work = Path(tempfile.mkdtemp(prefix="deploy-", dir=WORK))
    yaml_recipe = recipe(work / "one.yaml", "bench.OneLine", "echo hello")
    json_recipe = work / "one.json"
    json_recipe.write_text(json.dumps({
        "RecipeFormatVersion": "2020-01-25", "ComponentName": "bench.OneLine", "ComponentVersion": "1.0.0",
        "Manifests": [{"Lifecycle": {"Run": "echo hello"}}]}))
    floor_command = [sys.executable, "-c", "import subprocess; subprocess.run(['sh', '-c', 'echo hello'])"]

    def timed(command: list[str]) -> float:
        began = time.perf_counter()
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=work)
        elapsed = time.perf_counter() - began
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.decode()[-500:]}")
        return elapsed

    floor, yaml_times, json_times = [], [], []
    for index in range(runs):  # interleaved, so that drift in the machine's load hits all three alike
        floor.append(timed(floor_command))
        yaml_times.append(timed(nucleus_command() + ["--root", str(work / f"y{index}"), "deploy", str(yaml_recipe)]))
        json_times.append(timed(nucleus_command() + ["--root", str(work / f"j{index}"), "deploy", str(json_recipe)]))
    floor_ms, yaml_ms, json_ms = (1000 * median_of(x) for x in (floor, yaml_times, json_times))
    ratio = yaml_ms / floor_ms
    shutil.rmtree(work, ignore_errors=True)
    return Figure("deploy", "≤ 2.0× the Python floor",
                  f"{yaml_ms:.0f} ms = {ratio:.2f}× (JSON recipe: {json_ms:.0f} ms = {json_ms / floor_ms:.2f}×)",
                  f"floor: python3 spawning sh -c 'echo hello': {floor_ms:.0f} ms", ratio <= 2.0,
                  {"floor_ms": floor_ms, "yaml_ms": yaml_ms, "json_ms": json_ms, "ratio": ratio,
                   "json_ratio": json_ms / floor_ms, "runs": runs})


# -- 2 and 3. memory, and 200 components against supervisord ---------------------------------------------

COMPONENTS = 200
PROGRAM = "sleep 100000"


def figure_idle_memory() -> Figure:
    root = Path(tempfile.mkdtemp(prefix="idle-", dir=WORK)) / "root"
    daemon = Daemon(root)
    try:
        idle = rss_kb(daemon.proc.pid)
    finally:
        daemon.stop()
    bare = int(subprocess.run([sys.executable, "-c", "import re; print(re.search(r'VmRSS:\\s+(\\d+)', "
                               "open('/proc/self/status').read()).group(1))"], capture_output=True,
                              text=True).stdout)
    return Figure("idle-memory", "≤ 25 MB", f"{idle / 1024:.1f} MB", f"a bare python3: {bare / 1024:.1f} MB",
                  idle <= 25 * 1024, {"idle_kb": idle, "bare_python_kb": bare})


def supervisord_python() -> Path | None:
    """supervisord 4.3 in a virtualenv of its own, installed from PyPI on first use."""
    venv = WORK / "supervisor-venv"
    python = venv / "bin" / "python"
    if not (venv / "bin" / "supervisord").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", "supervisor>=4.3,<4.4"],
                              capture_output=True, text=True)
        if done.returncode != 0:
            print(f"note: cannot install supervisor: {done.stderr[-300:]}", file=sys.stderr)
            return None
    return python


def run_supervisord(work: Path) -> tuple[float, int] | None:
    python = supervisord_python()
    if python is None:
        return None
    logs = work / "supervisor-logs"
    logs.mkdir(parents=True)
    programs = "".join(textwrap.dedent(f"""
        [program:p{i:03d}]
        command={PROGRAM}
        startsecs=0
        autorestart=false
        stdout_logfile={logs}/p{i:03d}.log
        redirect_stderr=true
        """) for i in range(COMPONENTS))
    conf = work / "supervisord.conf"
    log = work / "supervisord.log"
    conf.write_text(textwrap.dedent(f"""
        [supervisord]
        nodaemon=true
        logfile={log}
        pidfile={work}/supervisord.pid
        [unix_http_server]
        file={work}/supervisor.sock
        [rpcinterface:supervisor]
        supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
        """) + programs)
    began = time.perf_counter()
    proc = subprocess.Popen([str(python.with_name("supervisord")), "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: log.exists() and log.read_text().count("entered RUNNING state") >= COMPONENTS, 120,
                 "supervisord's programs")
        elapsed = time.perf_counter() - began
        time.sleep(0.5)
        return elapsed, rss_kb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)


def figure_many_components() -> list[Figure]:
    work = Path(tempfile.mkdtemp(prefix="many-", dir=WORK))
    recipes = work / "recipes"
    recipes.mkdir()
    paths = [str(recipe(recipes / f"c{i:03d}.yaml", f"bench.Component{i:03d}", f"exec {PROGRAM}"))
             for i in range(COMPONENTS)]
    settle = "services:\n  aws.greengrass.Nucleus:\n    configuration:\n      startupSettleSeconds: 0\n"
    daemon = Daemon(work / "root", settle)
    try:
        idle = rss_kb(daemon.proc.pid)
        began = time.perf_counter()
        done = daemon.cli("deploy", *paths)
        ours = time.perf_counter() - began
        if done.returncode != 0:
            raise RuntimeError(f"the deployment of {COMPONENTS} components failed: {done.stderr[-500:]}")
        time.sleep(0.5)
        loaded = rss_kb(daemon.proc.pid)
        stopped_began = time.perf_counter()
    finally:
        daemon.stop()
    stop_seconds = time.perf_counter() - stopped_began
    reference = run_supervisord(work)
    shutil.rmtree(work, ignore_errors=True)
    growth = (loaded - idle) / COMPONENTS
    details = {"ours_seconds": ours, "ours_rss_kb": loaded, "idle_kb": idle, "growth_kb": growth,
               "stop_all_seconds": stop_seconds}
    figures = [Figure("per-component-memory", "≤ 25 KB per running component", f"{growth:.1f} KB",
                      f"idle {idle / 1024:.1f} MB → {loaded / 1024:.1f} MB with {COMPONENTS} running",
                      growth <= 25, details)]
    if reference is None:
        figures.append(Figure("200-components", "≤ 0.5× supervisord's time", f"{ours:.2f} s",
                              "supervisord unavailable", None, details))
        return figures
    theirs, their_rss = reference
    details.update({"supervisord_seconds": theirs, "supervisord_rss_kb": their_rss})
    figures.append(Figure("200-components", "time ≤ 0.5× supervisord's", f"{ours:.2f} s = {ours / theirs:.2f}×",
                          f"supervisord 4.3: {theirs:.2f} s", ours <= 0.5 * theirs, details))
    figures.append(Figure("200-components-memory", "RSS ≤ 1.4× supervisord's (≤ 30 MB)",
                          f"{loaded / 1024:.1f} MB = {loaded / their_rss:.2f}×",
                          f"supervisord 4.3: {their_rss / 1024:.1f} MB",
                          loaded <= 1.4 * their_rss and loaded <= 30 * 1024, details))
    return figures


# -- 4. the token exchange service under load -----------------------------------------------------------

PROBE = textwrap.dedent("""
    import os, time
    with open(os.environ["BENCH_OUT"] + ".tmp", "w") as out:
        out.write(os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"] + "\\n" + os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"])
    os.rename(os.environ["BENCH_OUT"] + ".tmp", os.environ["BENCH_OUT"])
    time.sleep(100000)
""")


def figure_tes(duration: int) -> Figure:
    work = Path(tempfile.mkdtemp(prefix="tes-", dir=WORK))
    out = work / "endpoint"
    script = work / "probe.py"
    script.write_text(PROBE)
    probe = recipe(work / "probe.yaml", "bench.Probe", f"{sys.executable} {script}",
                   "ComponentDependencies:\n  aws.greengrass.TokenExchangeService:\n"
                   "    VersionRequirement: ^2.0.0\n")
    probe.write_text(probe.read_text().replace("      Run: ", f"      Setenv: {{BENCH_OUT: {out}}}\n      Run: "))
    daemon = Daemon(work / "root", sandbox=True)
    try:
        done = daemon.cli("deploy", str(probe))
        if done.returncode != 0:
            raise RuntimeError(f"the probe failed: {done.stderr[-500:]}")
        wait_for(out.exists, 60, "the probe")
        url, token = out.read_text().split("\n")
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": token}), timeout=10).read()
        result = wrk(url, token, duration) if shutil.which("wrk") else python_load(url, token, duration)
    finally:
        daemon.stop()
        shutil.rmtree(work, ignore_errors=True)
    p99, rate, tool = result["p99_ms"], result["requests_per_second"], result["tool"]
    return Figure("tes-load", "p99 ≤ 5 ms and ≥ 2,000 requests/s (16 keep-alive clients, cached)",
                  f"p99 {p99:.2f} ms, {rate:,.0f} requests/s", f"load from {tool}", p99 <= 5 and rate >= 2000,
                  result)


def wrk(url: str, token: str, duration: int) -> dict[str, Any]:
    done = subprocess.run(["wrk", "-t", "2", "-c", "16", "-d", f"{duration}s", "--latency", "-H",
                           f"Authorization: {token}", url], capture_output=True, text=True, check=True)
    text = done.stdout

    def millis(value: str) -> float:
        number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
        return float(number) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    p99 = millis(re.search(r"99%\s+(\S+)", text).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {"tool": "wrk (2 threads, 16 connections)", "p99_ms": p99, "requests_per_second": rate,
            "non_2xx": int(errors.group(1)) if errors else 0}


LOAD = textwrap.dedent("""
    import asyncio, json, sys, time, urllib.parse
    url, token, duration = sys.argv[1], sys.argv[2], float(sys.argv[3])
    parts = urllib.parse.urlsplit(url)
    request = (f"GET {parts.path} HTTP/1.1\\r\\nHost: {parts.netloc}\\r\\nAuthorization: {token}\\r\\n\\r\\n").encode()
    latencies, errors = [], 0
    async def client(stop):
        global errors
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        while time.perf_counter() < stop:
            began = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\\r\\n")[0])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - began)
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
        writer.close()
    async def main():
        stop = time.perf_counter() + duration
        await asyncio.gather(*(client(stop) for _ in range(16)))
    began = time.perf_counter()
    asyncio.run(main())
    elapsed = time.perf_counter() - began
    latencies.sort()
    print(json.dumps({"p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
                      "requests_per_second": len(latencies) / elapsed, "non_2xx": errors}))
""")


def python_load(url: str, token: str, duration: int) -> dict[str, Any]:
    """No wrk here: an equivalent load from a separate Python process (its own overhead counts against us)."""
    done = subprocess.run([sys.executable, "-c", LOAD, url, token, str(duration)], capture_output=True,
                          text=True, check=True)
    return {"tool": "a separate Python asyncio client (wrk not installed), 16 keep-alive connections",
            **json.loads(done.stdout)}


# -- 5. resolution -------------------------------------------------------------------------------------


def figure_resolve() -> Figure:
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "resolve_bench.py"), "--json"],
                          capture_output=True, text=True, check=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return Figure("resolve", "≤ 200 ms", f"{result['median_ms']:.0f} ms",
                  "500 components × 5 versions, backtracking needed", result["median_ms"] <= 200, result)


# -- 6. respawn latency --------------------------------------------------------------------------------


def figure_respawn(rounds: int) -> Figure:
    """One crashing component at a time (each deploy gives two respawns before it is BROKEN)."""
    work = Path(tempfile.mkdtemp(prefix="respawn-", dir=WORK))
    script = 'echo "start $(date +%s%N)" >> {work:path}/times; echo "end $(date +%s%N)" >> {work:path}/times; exit 1'
    path = str(recipe(work / "crash.yaml", "bench.Crash", f"'{script}'"))
    gaps = []
    for i in range(rounds):
        root = work / f"root{i}"
        subprocess.run(nucleus_command() + ["--root", str(root), "deploy", path], capture_output=True, timeout=300)
        events = [line.split() for line in (root / "work" / "bench.Crash" / "times").read_text().splitlines()]
        for (kind_a, end), (kind_b, start) in zip(events, events[1:]):
            if kind_a == "end" and kind_b == "start":
                gaps.append((int(start) - int(end)) / 1e6)
    shutil.rmtree(work, ignore_errors=True)
    gap = median_of(gaps)
    return Figure("respawn", "≤ 50 ms from exit to the new process", f"{gap:.1f} ms (median of {len(gaps)})",
                  f"worst {max(gaps):.1f} ms; includes `date` starting in the new process", gap <= 50,
                  {"median_ms": gap, "max_ms": max(gaps), "samples": len(gaps)})


# -- 7. stopping: a component whose `sh` forked its program, and a shutdown -------------------------------


def _log_times(log: Path, pattern: str) -> list[float]:
    """Timestamps (seconds) of the nucleus.log lines matching `pattern`."""
    import datetime as dt

    found = []
    for line in log.read_text().splitlines():
        if re.search(pattern, line):
            stamp = dt.datetime.strptime(line.split(" ", 1)[0], "%Y-%m-%dT%H:%M:%S.%fZ")
            found.append(stamp.replace(tzinfo=dt.timezone.utc).timestamp())
    return found


def figure_stop(rounds: int) -> list[Figure]:
    """`sh -c 'python3 …'`: sh forks the program, and a stop must not wait for an orphan nobody reaps."""
    work = Path(tempfile.mkdtemp(prefix="stop-", dir=WORK))
    program = f"{sys.executable} -c 'import time; time.sleep(1e6)'"
    paths = [str(recipe(work / f"s{i}.yaml", f"bench.Stop{i}", program)) for i in range(3)]
    single, shutdown = [], []
    for index in range(rounds):
        root = work / f"root{index}"
        daemon = Daemon(root)
        try:
            if daemon.cli("deploy", *paths).returncode != 0:
                raise RuntimeError("the stop benchmark's deployment failed")
            daemon.cli("stop", "bench.Stop0")
        finally:
            daemon.stop()
        log = root / "logs" / "nucleus.log"
        began = _log_times(log, r"component=bench\.Stop0 .*new=STOPPING")[-1]
        ended = _log_times(log, r"component=bench\.Stop0 .*new=FINISHED")[-1]
        single.append(ended - began)
        shutdown.append(_log_times(log, "nucleus-stopped")[-1] - _log_times(log, "nucleus-stopping")[-1])
    shutil.rmtree(work, ignore_errors=True)
    one, two = 1000 * median_of(single), 1000 * median_of(shutdown)
    return [Figure("stop", "≤ 0.3 s to stop a component whose sh forked its program", f"{one:.0f} ms",
                   f"median of {rounds}; gracefulShutdownTimeout is 5 s", one <= 300,
                   {"median_ms": one, "samples_ms": [1000 * s for s in single]}),
            Figure("shutdown", "≤ 0.5 s to stop the nucleus with 2 such components", f"{two:.0f} ms",
                   f"median of {rounds}", two <= 500, {"median_ms": two, "samples_ms": [1000 * s for s in shutdown]})]


# -- the table -----------------------------------------------------------------------------------------


def machine() -> str:
    cpus = os.cpu_count()
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return f"{model}, {cpus} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def table(figures: list[Figure]) -> str:
    rows = ["| figure | goal | measured | reference (same run) | met |", "|---|---|---|---|---|"]
    for f in figures:
        met = {True: "yes", False: "**no**", None: "n/a"}[f.met]
        rows.append(f"| {f.name} | {f.goal} | {f.measured} | {f.reference} | {met} |")
    return "\n".join(rows)


def write_docs(figures: list[Figure]) -> None:
    text = DOCS.read_text()
    block = (f"{BEGIN}\nMeasured {time.strftime('%Y-%m-%d')} on {machine()}, with `python benchmarks/run.py "
             f"--write-docs`:\n\n{table(figures)}\n{END}")
    DOCS.write_text(re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--write-docs", action="store_true", help="rewrite the table in docs/performance.md")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        choices=["deploy", "memory", "many", "tes", "resolve", "respawn", "stop"])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a rough look)")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    wanted = set(args.only or ["deploy", "memory", "many", "tes", "resolve", "respawn", "stop"])
    figures: list[Figure] = []
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("deploy", lambda: figure_deploy(5 if args.quick else 15)),
        ("memory", figure_idle_memory),
        ("many", figure_many_components),
        ("tes", lambda: figure_tes(3 if args.quick else 10)),
        ("resolve", figure_resolve),
        ("respawn", lambda: figure_respawn(3 if args.quick else 10)),
        ("stop", lambda: figure_stop(3 if args.quick else 7)),
    ]
    for name, step in steps:
        if name not in wanted:
            continue
        print(f"measuring {name}…", file=sys.stderr, flush=True)
        result = step()
        figures.extend(result if isinstance(result, list) else [result])
    if args.json:
        print(json.dumps([f.__dict__ for f in figures], indent=2, sort_keys=True))
    else:
        print(table(figures))
    if args.write_docs:
        write_docs(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
