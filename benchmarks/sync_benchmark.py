"""Benchmark: `fmeaa sync` against emulated nodes on loopback, measured side by side in one run
with a naive script, at each per-request latency asked for (default 0 ms and 50 ms: real FME
nodes answer in tens to hundreds of milliseconds). Prints the goals of issue 14, each met or not:

  1. full sync of W workspaces + R resource files to N fresh nodes, as a ratio to the naive
     script (one thread per node, one file after another): <= 0.35x at 50 ms, <= 1.0x at 0 ms;
  2. a no-op with an EMPTY local cache (a new CI runner) as a share of the full sync (<= 10%),
     and the workspace/resource bytes it downloads (0);
  3. the no-op's requests per node: O(pages), <= kinds + entries/100 + a constant;
  4. after changing 1% of the files: bytes sent / (bytes changed x nodes) <= 1.1 (shown with
     the rollback record, fmeaa's default, and without it: --no-history);
  5. peak RSS of fmeaa flat from 1,000 to 5,000 workspaces; time from 5,000 to 10,000 <= 2.1x;
  6. no node ever holds more requests from fmeaa than its bound (--node-concurrency).

The emulated nodes run in their own process (`fmeaa sandbox`), as do fmeaa and the naive script,
so neither shares an interpreter (or a GIL) with the servers. Requests and bytes are counted by
the emulator (`/__emulator__/stats`, per node and per path), not by the tool being measured.
The sandbox plays FME Flow 2025.2: the naive script speaks REST V3 only (as most scripts in use
do), which FME Flow 2026.1 no longer serves; fmeaa speaks each node's own API either way.

    ./dev bench                      # 400 workspaces + 20 x 256 KB, 4 nodes, 0 and 50 ms
    ./dev bench --quick              # a small smoke run
    ./dev bench --latency 0.05       # one latency only
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

PYTHON = sys.executable
PASSWORD = secrets.token_urlsafe(16)
KINDS = 10  # entry kinds fmeaa reads (fmeaa.sync.snapshot.Kind)
CONSTANT = 16  # discovery, token, lock (4, when taken), ledger (2), resource folders, stats
NAIVE = r'''
import json, sys, threading, httpx
from pathlib import Path
inventory, content, password = json.load(open(sys.argv[1])), Path(sys.argv[2]), sys.argv[3]
files = sorted(p for p in content.rglob("*") if p.is_file() and p.name != "fmeaa-content.yaml")
def upload(node):
    with httpx.Client(base_url=node["restUrl"], timeout=120) as http:
        token = http.post("/fmerest/v3/tokens", auth=("admin", password),
                          json={"name": "naive", "expirationTimeout": 3600}).json()["token"]
        head = {"Authorization": f"fmetoken token={token}"}
        http.post("/fmerest/v3/repositories", data={"name": "Bench"}, headers=head)
        for f in files:
            h = {**head, "Content-Type": "application/octet-stream",
                 "Content-Disposition": f'attachment; filename="{f.name}"'}
            with f.open("rb") as body:
                if f.suffix == ".fmw":
                    r = http.post("/fmerest/v3/repositories/Bench/items", content=body, headers=h)
                else:
                    r = http.post("/fmerest/v3/resources/connections/FME_SHAREDRESOURCE_DATA/"
                                  "filesys/bench", params={"createDirectories": "true",
                                  "overwrite": "true"}, content=body, headers=h)
            r.raise_for_status()
threads = [threading.Thread(target=upload, args=(n,)) for n in inventory["nodes"]]
[t.start() for t in threads]; [t.join() for t in threads]
'''


def make_content(root: Path, workspaces: int, resource_files: int, resource_kb: int,
                 workspace_kb: tuple[int, int] = (8, 40)) -> int:
    """A content directory; returns its total file bytes."""
    rng = random.Random(42)
    (root / "ws").mkdir(parents=True)
    (root / "res").mkdir()
    total = 0
    items = []
    for i in range(workspaces):
        size = rng.randint(workspace_kb[0] * 1000, workspace_kb[1] * 1000)  # .fmw: tens of KB
        (root / "ws" / f"w{i:05d}.fmw").write_bytes(os.urandom(size))
        items.append({"file": f"ws/w{i:05d}.fmw"})
        total += size
    for i in range(resource_files):
        (root / "res" / f"r{i:04d}.bin").write_bytes(os.urandom(resource_kb * 1024))
        total += resource_kb * 1024
    manifest = {"version": 1, "repositories": [{"name": "Bench", "items": items}],
                "resources": [{"connection": "FME_SHAREDRESOURCE_DATA", "source": "res",
                               "target": "/bench"}] if resource_files else []}
    (root / "fmeaa-content.yaml").write_text(yaml.safe_dump(manifest))
    return total


class Nodes:
    """`fmeaa sandbox` in its own process, every node answering after `latency` seconds."""

    def __init__(self, count: int, work: Path, name: str, latency: float) -> None:
        self.inventory = work / f"{name}.json"
        self.state = work / name
        env = {**os.environ, "FMEAA_PASSWORD": PASSWORD}
        faults = [f"--fault=fme-{i + 1}:latency={latency}" for i in range(count)] if latency \
            else []
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "fmeaa", "sandbox", "--nodes", str(count), "--inventory",
             str(self.inventory), "--state-dir", str(self.state), "--duration", "7200",
             "--fme-version", "2025.2", *faults],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not self.inventory.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("sandbox did not start")
            time.sleep(0.1)
        self.urls = [n["restUrl"] for n in json.loads(self.inventory.read_text())["nodes"]]
        for url in self.urls:
            while True:
                try:
                    httpx.get(f"{url}/__emulator__/stats", timeout=5)
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
        self.reset()

    def stats(self) -> list[dict[str, Any]]:
        return [httpx.get(f"{u}/__emulator__/stats", timeout=30).json() for u in self.urls]

    def reset(self) -> None:
        for u in self.urls:
            httpx.post(f"{u}/__emulator__/stats/reset", timeout=30)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)
        shutil.rmtree(self.state, ignore_errors=True)


@dataclass
class Run:
    wall_s: float  # the process, start to end
    inside_s: float | None  # as the command reports it (no interpreter start-up)
    rss_kib: int
    stats: list[dict[str, Any]] = field(default_factory=list)  # per node, emulator counters

    def total(self, key: str) -> int:
        return sum(s[key] for s in self.stats)

    @property
    def content_downloaded(self) -> int:
        """Workspace and resource bytes the nodes sent (not fmeaa's own ledger and lock)."""
        return sum(n for s in self.stats for what, n in s["downloads"].items()
                   if what != "resource:FME_SHAREDRESOURCE_BACKUP")

    @property
    def requests_per_node(self) -> int:
        return max(s["requests"] for s in self.stats)


def run(args: list[str], cache: Path | None, nodes: Nodes) -> Run:
    nodes.reset()
    env = {**os.environ, "FMEAA_PASSWORD": PASSWORD}
    if cache is not None:
        env["FMEAA_CACHE_DIR"] = str(cache)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        out.seek(0)
        text = out.read()
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise RuntimeError(f"{args[2:4]} failed: {err.read().decode()[-3000:]}")
    inside = json.loads(text).get("seconds") if text.strip().startswith(b"{") else None
    return Run(elapsed, inside, usage.ru_maxrss, nodes.stats())


def fmeaa_sync(content: Path, nodes: Nodes, cache: Path, *extra: str) -> Run:
    return run([PYTHON, "-m", "fmeaa", "sync", "-s", str(content), "-i", str(nodes.inventory),
                "--json", *extra], cache, nodes)


def naive(script: Path, content: Path, nodes: Nodes) -> Run:
    return run([PYTHON, str(script), str(nodes.inventory), str(content), PASSWORD], None, nodes)


def change_one_percent(content: Path, seed: int = 7) -> int:
    """Rewrite the first bytes of 1% of the files (same size); returns the bytes changed."""
    files = sorted(p for p in content.rglob("*") if p.is_file() and p.suffix in (".fmw", ".bin"))
    changed = 0
    for f in random.Random(seed).sample(files, max(1, len(files) // 100)):
        data = bytearray(f.read_bytes())
        data[:64] = os.urandom(64)
        f.write_bytes(data)
        changed += len(data)
    return changed


@dataclass
class AtLatency:
    latency: float
    naive: list[Run]
    full: list[Run]
    warm: Run
    cold: Run
    changed_bytes: int
    delta: Run
    entries: int
    bare_changed: int  # the same, synced with --no-history
    bare: Run

    @property
    def naive_s(self) -> float:
        return statistics.median(r.wall_s for r in self.naive)

    @property
    def full_s(self) -> float:
        return statistics.median(r.wall_s for r in self.full)

    @property
    def full_inside_s(self) -> float:
        return statistics.median(r.inside_s or 0 for r in self.full)


def measure(latency: float, a: argparse.Namespace, work: Path, content: Path, script: Path,
            entries: int) -> AtLatency:
    tag = f"{int(latency * 1000)}ms"
    naive_runs, full_runs = [], []
    for r in range(a.rounds):  # alternated on fresh nodes; the median of each counts
        nodes = Nodes(a.nodes, work, f"naive-{tag}-{r}", latency)
        naive_runs.append(naive(script, content, nodes))
        nodes.close()
        nodes = Nodes(a.nodes, work, f"fmeaa-{tag}-{r}", latency)
        cache = work / f"cache-{tag}-{r}"
        full_runs.append(fmeaa_sync(content, nodes, cache))
        if r < a.rounds - 1:
            nodes.close()
    # on the last round's nodes: the no-ops, then 1% changed
    warm = fmeaa_sync(content, nodes, cache)
    cold = fmeaa_sync(content, nodes, work / f"cache-{tag}-empty")
    mine = work / f"content-{tag}"
    shutil.copytree(content, mine)
    # the copy has new mtimes: let the warm cache learn them first (a no-op)
    fmeaa_sync(mine, nodes, cache)
    changed = change_one_percent(mine)
    delta = fmeaa_sync(mine, nodes, cache)
    # the same without the rollback record (which sends each replaced file's earlier bytes to
    # the node's history store once more)
    bare_changed = change_one_percent(mine, seed=8)
    bare = fmeaa_sync(mine, nodes, cache, "--no-history")
    nodes.close()
    shutil.rmtree(mine)
    return AtLatency(latency, naive_runs, full_runs, warm, cold, changed, delta, entries,
                     bare_changed, bare)


def measure_scale(sizes: list[int], work: Path, tries: int = 2) -> dict[int, Run]:
    """Full syncs of growing content (small workspaces, 2 fresh nodes, no latency); of `tries`
    runs per size, the fastest counts (the one least disturbed by other work on the machine)."""
    found = {}
    for size in sizes:
        content = work / f"scale-{size}"
        make_content(content, size, 0, 0, workspace_kb=(1, 3))
        runs = []
        for t in range(tries):
            nodes = Nodes(2, work, f"scale-{size}-{t}-nodes", 0.0)
            runs.append(fmeaa_sync(content, nodes, work / f"scale-{size}-{t}-cache"))
            nodes.close()
        found[size] = min(runs, key=lambda r: r.wall_s)
        shutil.rmtree(content)
    return found


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def report(results: list[AtLatency], scale: dict[int, Run], a: argparse.Namespace,
           total: int) -> None:
    heads = [f"{int(r.latency * 1000)} ms" for r in results]
    width = 16
    print(f"\ncontent: {a.workspaces} workspaces + {a.resource_files} x {a.resource_kb} KB "
          f"= {total / 1e6:,.1f} MB, to {a.nodes} nodes; median of {a.rounds} round(s); "
          f"fmeaa --node-concurrency {a.node_concurrency or 'default'}")
    print(f"\n{'measure':<58}" + "".join(f"{h:>{width}}" for h in heads))

    def line(name: str, cells: list[str]) -> None:
        print(f"{name:<58}" + "".join(f"{c:>{width}}" for c in cells))

    line("naive script (thread per node, files in turn), s", [f"{r.naive_s:.2f}" for r in results])
    line("fmeaa sync, fresh nodes, s", [f"{r.full_s:.2f}" for r in results])
    line("  the same, timed inside fmeaa (no interpreter start), s",
         [f"{r.full_inside_s:.2f}" for r in results])
    line("no-op, warm local cache, s", [f"{r.warm.wall_s:.2f}" for r in results])
    line("no-op, EMPTY local cache (new CI runner), s", [f"{r.cold.wall_s:.2f}" for r in results])
    line("  the same, timed inside fmeaa, s", [f"{r.cold.inside_s or 0:.2f}" for r in results])
    line("requests per node: naive / full sync",
         [f"{r.naive[-1].requests_per_node} / {r.full[-1].requests_per_node}" for r in results])
    line("requests per node: no-op warm / empty cache",
         [f"{r.warm.requests_per_node} / {r.cold.requests_per_node}" for r in results])
    line("most requests in flight on one node (full sync)",
         [str(max(s["maxInFlight"] for s in r.full[-1].stats)) for r in results])
    line("429 answers (throttled)", [str(r.full[-1].total("throttled")) for r in results])

    bound = KINDS + math.ceil((results[0].entries if results else 0) / 100) + CONSTANT
    limit = a.node_concurrency or 8
    goals: list[tuple[str, list[str], str, list[bool]]] = [
        ("full sync / naive", [f"{r.full_s / r.naive_s:.2f}x" for r in results],
         "<= 1.0x @0, 0.35x @50ms",
         [r.full_s / r.naive_s <= (1.0 if r.latency < 0.01 else 0.35) for r in results]),
        ("no-op, empty cache / full sync (process wall time)",
         [f"{100 * r.cold.wall_s / r.full_s:.1f}%" for r in results], "<= 10%",
         [r.cold.wall_s / r.full_s <= 0.10 for r in results]),
        ("  the same, timed inside fmeaa",
         [f"{100 * (r.cold.inside_s or 0) / r.full_inside_s:.1f}%" for r in results], "<= 10%",
         [(r.cold.inside_s or 0) / r.full_inside_s <= 0.10 for r in results]),
        ("no-op, empty cache: workspace/resource bytes downloaded",
         [f"{r.cold.content_downloaded:,}" for r in results], "0",
         [r.cold.content_downloaded == 0 for r in results]),
        (f"no-op, empty cache: requests per node (bound {bound})",
         [str(r.cold.requests_per_node) for r in results], f"<= {bound}",
         [r.cold.requests_per_node <= bound for r in results]),
        ("1% changed: bytes sent / (bytes changed x nodes)",
         [f"{r.delta.total('uploadedBytes') / (r.changed_bytes * a.nodes):.3f}x" for r in results],
         "<= 1.1x",
         [r.delta.total("uploadedBytes") <= 1.1 * r.changed_bytes * a.nodes for r in results]),
        ("  the same with --no-history (no rollback record)",
         [f"{r.bare.total('uploadedBytes') / (r.bare_changed * a.nodes):.3f}x" for r in results],
         "<= 1.1x",
         [r.bare.total("uploadedBytes") <= 1.1 * r.bare_changed * a.nodes for r in results]),
        (f"requests in flight per node never above the bound ({limit})",
         [str(max(s["maxInFlight"] for s in r.full[-1].stats)) for r in results], f"<= {limit}",
         [max(s["maxInFlight"] for s in r.full[-1].stats) <= limit for r in results]),
    ]
    sizes = sorted(scale)
    if len(sizes) >= 3:
        s1, s2, s3 = sizes[:3]
        rss = scale[s2].rss_kib / scale[s1].rss_kib
        growth = scale[s3].wall_s / scale[s2].wall_s
        goals.append((f"peak RSS, {s1:,} -> {s2:,} workspaces",
                      [f"{scale[s1].rss_kib // 1024} -> {scale[s2].rss_kib // 1024} MiB"]
                      + [""] * (len(results) - 1), "flat (<= 1.2x)", [rss <= 1.2]))
        goals.append((f"time, {s2:,} -> {s3:,} workspaces",
                      [f"{scale[s2].wall_s:.1f} -> {scale[s3].wall_s:.1f} s"]
                      + [""] * (len(results) - 1), "<= 2.1x", [growth <= 2.1]))
    if not results:  # growth only
        goals = goals[len(goals) - (2 if len(sizes) >= 3 else 0):]
    print(f"\n{'goal (issue 14)':<58}" + "".join(f"{h:>{width}}" for h in heads)
          + f"  {'target':<26}verdict")
    for name, cells, target, oks in goals:
        print(f"{name:<58}" + "".join(f"{c:>{width}}" for c in cells)
              + f"  {target:<26}{', '.join(verdict(ok) for ok in oks)}")
    if sizes and len(sizes) >= 3:
        print(f"  (scaling, fastest of 2 runs each: {s1:,} / {s2:,} / {s3:,} workspaces of 1-3 KB "
              f"to 2 nodes, 0 ms: "
              f"{scale[s1].wall_s:.1f} / {scale[s2].wall_s:.1f} / {scale[s3].wall_s:.1f} s, "
              f"peak RSS {scale[s1].rss_kib // 1024} / {scale[s2].rss_kib // 1024} / "
              f"{scale[s3].rss_kib // 1024} MiB)")
    if not results:
        return
    last = results[-1]
    print(f"\nwhere the requests go, one node, at {int(last.latency * 1000)} ms:")
    for label, r in (("full sync", last.full[-1]), ("no-op, empty cache", last.cold)):
        paths = Counter(last_node_paths(r))
        shown = ", ".join(f"{p} {n}" for p, n in paths.most_common(8))
        print(f"  {label}: {shown}")


def last_node_paths(r: Run) -> dict[str, int]:
    return r.stats[0]["byPath"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspaces", type=int, default=400)
    parser.add_argument("--resource-files", type=int, default=20)
    parser.add_argument("--resource-kb", type=int, default=256)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--latency", default="0,0.05",
                        help="seconds each node waits before answering; comma-separated")
    parser.add_argument("--rounds", type=int, default=3,
                        help="naive/full-sync pairs per latency; the median of each counts")
    parser.add_argument("--scale", default="1000,5000,10000",
                        help="workspace counts for the RSS and growth goals ('' to skip)")
    parser.add_argument("--node-concurrency", type=int, default=None,
                        help="fmeaa's requests in flight per node (default: fmeaa's own)")
    parser.add_argument("--quick", action="store_true",
                        help="100 workspaces, 10 x 64 KB, 1 round, scale 250/1,250/2,500")
    a = parser.parse_args()
    if a.quick:
        a.workspaces, a.resource_files, a.resource_kb, a.rounds = 100, 10, 64, 1
        a.scale = "250,1250,2500" if a.scale == "1000,5000,10000" else a.scale
    if a.node_concurrency:
        os.environ["FMEAA_NODE_CONCURRENCY"] = str(a.node_concurrency)
    # Measure fmeaa as installed: with its bytecode.
    import compileall

    import fmeaa

    compileall.compile_dir(Path(fmeaa.__file__).parent, quiet=1)
    work = Path(tempfile.mkdtemp(prefix="fmeaa-bench-"))
    try:
        content = work / "content"
        total = make_content(content, a.workspaces, a.resource_files, a.resource_kb)
        entries = 1 + a.workspaces + a.resource_files  # repository + items + files
        script = work / "naive.py"
        script.write_text(NAIVE)
        results = []
        for latency in (float(x) for x in a.latency.split(",") if x.strip()):
            print(f"measuring at {latency * 1000:.0f} ms per request …", file=sys.stderr)
            results.append(measure(latency, a, work, content, script, entries))
        sizes = [int(x) for x in a.scale.split(",") if x.strip()]
        if sizes:
            print(f"measuring growth: {', '.join(map(str, sizes))} workspaces …", file=sys.stderr)
        report(results, measure_scale(sizes, work) if sizes else {}, a, total)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
