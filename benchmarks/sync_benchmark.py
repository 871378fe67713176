"""Benchmark: fmeaa sync against emulated nodes on loopback, measured side by side in one run.

Prints (targets from issue 4):
  1. full sync of W workspaces + R MB of resources to N nodes, as a ratio to a plain concurrent
     upload of the same bytes to the same number of fresh nodes (target <= 1.3x);
  2. no-op re-sync time as a share of the full sync (target <= 5%) and file bytes sent (target 0);
  3. after changing 1% of the files: bytes sent / bytes changed (target <= 1.1x);
  4. peak RSS of the fmeaa process at two content sizes (target: flat, i.e. streamed).

The emulated nodes run in their own process (`fmeaa sandbox`), as do fmeaa and the baseline,
so neither shares an interpreter (or a GIL) with the servers. Bytes are counted by the
emulator (`/__emulator__/stats`), not reported by the tool being measured.

    .venv/bin/python benchmarks/sync_benchmark.py                 # 1,000 workspaces, 200 MB
    .venv/bin/python benchmarks/sync_benchmark.py --quick         # a small smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

PYTHON = sys.executable
CPU: dict[str, float] = {}  # last CPU seconds (user + system) per kind of child
PASSWORD = secrets.token_urlsafe(16)
BASELINE = r'''
import json, sys, threading, httpx
from pathlib import Path
inventory, content, password = json.load(open(sys.argv[1])), Path(sys.argv[2]), sys.argv[3]
files = sorted(p for p in content.rglob("*") if p.is_file() and p.name != "fmeaa-content.yaml")
def upload(node):
    with httpx.Client(base_url=node["restUrl"], timeout=120) as http:
        token = http.post("/fmerest/v3/tokens", auth=("admin", password),
                          json={"name": "baseline", "expirationTimeout": 3600}).json()["token"]
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


def make_content(root: Path, workspaces: int, resource_mb: int, resource_files: int) -> int:
    """A content directory; returns its total file bytes."""
    rng = random.Random(42)
    (root / "ws").mkdir(parents=True)
    (root / "res").mkdir()
    total = 0
    items = []
    for i in range(workspaces):
        size = rng.randint(8_000, 40_000)  # typical .fmw sizes are tens of KB
        (root / "ws" / f"w{i:05d}.fmw").write_bytes(os.urandom(size))
        items.append({"file": f"ws/w{i:05d}.fmw"})
        total += size
    chunk = resource_mb * 1024 * 1024 // resource_files
    for i in range(resource_files):
        with (root / "res" / f"r{i:04d}.bin").open("wb") as out:
            for _ in range(chunk // (1024 * 1024)):
                out.write(os.urandom(1024 * 1024))
            out.write(os.urandom(chunk % (1024 * 1024)))
        total += chunk
    manifest = {"version": 1, "repositories": [{"name": "Bench", "items": items}],
                "resources": [{"connection": "FME_SHAREDRESOURCE_DATA", "source": "res",
                               "target": "/bench"}]}
    (root / "fmeaa-content.yaml").write_text(yaml.safe_dump(manifest))
    return total


class Nodes:
    """`fmeaa sandbox` in its own process."""

    def __init__(self, count: int, work: Path, name: str) -> None:
        self.inventory = work / f"{name}.json"
        env = {**os.environ, "FMEAA_PASSWORD": PASSWORD}
        self.proc = subprocess.Popen(
            # FME Flow 2025.2 serves the REST V3 calls the plain baseline uploader makes.
            [PYTHON, "-m", "fmeaa", "sandbox", "--nodes", str(count), "--inventory",
             str(self.inventory), "--state-dir", str(work / name), "--duration", "3600",
             "--fme-version", "2025.2"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not self.inventory.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("sandbox did not start")
            time.sleep(0.1)
        time.sleep(0.3)
        self.urls = [n["restUrl"] for n in json.loads(self.inventory.read_text())["nodes"]]

    def stats(self, key: str) -> int:
        return sum(httpx.get(f"{u}/__emulator__/stats", timeout=10).json()[key] for u in self.urls)

    def uploaded(self) -> int:
        return self.stats("uploadedBytes")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def run(args: list[str], cache: Path) -> tuple[float, bytes, int]:
    """(wall seconds, stdout, peak RSS in KiB) of one child process."""
    env = {**os.environ, "FMEAA_PASSWORD": PASSWORD, "FMEAA_CACHE_DIR": str(cache)}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise RuntimeError(f"{args[2:4]} failed: {err.read().decode()[-2000:]}")
        out.seek(0)
        CPU["fmeaa" if "fmeaa" in args else "baseline"] = usage.ru_utime + usage.ru_stime
        return elapsed, out.read(), usage.ru_maxrss


def sync(content: Path, nodes: Nodes, cache: Path) -> tuple[float, float, int]:
    """(process wall seconds, seconds the command reports — i.e. without interpreter start-up,
    peak RSS KiB)."""
    seconds, stdout, rss = run([PYTHON, "-m", "fmeaa", "sync", "-s", str(content), "-i",
                                str(nodes.inventory), "--json"], cache)
    return seconds, json.loads(stdout)["seconds"], rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspaces", type=int, default=1000)
    parser.add_argument("--resource-mb", type=int, default=200)
    parser.add_argument("--resource-files", type=int, default=50)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5,
                        help="baseline/full-sync pairs; the median of each counts")
    parser.add_argument("--quick", action="store_true", help="100 workspaces, 20 MB")
    a = parser.parse_args()
    if a.quick:
        a.workspaces, a.resource_mb, a.resource_files = 100, 20, 10
    # Measure fmeaa as installed: with its bytecode (pip compiles dependencies; ours are an
    # editable install, and PYTHONDONTWRITEBYTECODE may be set).
    import compileall

    import fmeaa

    compileall.compile_dir(Path(fmeaa.__file__).parent, quiet=1)
    work = Path(tempfile.mkdtemp(prefix="fmeaa-bench-"))
    try:
        big = work / "content"
        total = make_content(big, a.workspaces, a.resource_mb, a.resource_files)
        small = work / "content-small"
        small_total = make_content(small, a.workspaces // 4, a.resource_mb // 4,
                                   max(1, a.resource_files // 4))
        print(f"content: {a.workspaces} workspaces + {a.resource_mb} MB of resources = "
              f"{total / 1e6:,.1f} MB, to {a.nodes} nodes ({total * a.nodes / 1e6:,.1f} MB sent)")

        script = work / "baseline.py"
        script.write_text(BASELINE)
        # Baseline and full sync alternate, `--rounds` times each, on fresh nodes every time;
        # the median of each counts (one round's disk write-back can slow or spare the next).
        base_runs, full_runs = [], []
        for r in range(a.rounds):
            base_nodes = Nodes(a.nodes, work, f"baseline-{r}")
            seconds, _, base_rss = run([PYTHON, str(script), str(base_nodes.inventory), str(big),
                                        PASSWORD], work / "unused")
            base_runs.append(seconds)
            base_bytes = base_nodes.uploaded()
            base_requests = base_nodes.stats("requests")
            base_nodes.close()
            shutil.rmtree(work / f"baseline-{r}")
            if r < a.rounds - 1:
                trial = Nodes(a.nodes, work, f"trial-{r}")
                full_runs.append(sync(big, trial, work / f"cache-trial-{r}")[0])
                trial.close()
                shutil.rmtree(work / f"trial-{r}")
        base_s = statistics.median(base_runs)
        base_cpu = CPU["baseline"]

        nodes = Nodes(a.nodes, work, "fmeaa")
        cache = work / "cache"
        full_s, full_in, full_rss = sync(big, nodes, cache)
        full_runs.append(full_s)
        full_s = statistics.median(full_runs)
        full_cpu = CPU["fmeaa"]
        full_bytes = nodes.uploaded()
        full_requests = nodes.stats("requests")
        noop_s, noop_in, noop_rss = sync(big, nodes, cache)
        noop_bytes = nodes.uploaded() - full_bytes

        rng = random.Random(7)
        files = sorted(p for p in big.rglob("*") if p.is_file() and p.suffix in (".fmw", ".bin"))
        changed = rng.sample(files, max(1, len(files) // 100))
        changed_bytes = 0
        for f in changed:
            data = bytearray(f.read_bytes()) if f.stat().st_size < 50_000_000 else None
            if data is None:
                continue
            data[: 64] = os.urandom(64)  # same size, new content
            f.write_bytes(data)
            changed_bytes += len(data)
        before = nodes.uploaded()
        delta_s, _, _ = sync(big, nodes, cache)
        delta_bytes = nodes.uploaded() - before
        nodes.close()

        small_nodes = Nodes(a.nodes, work, "small")
        small_s, _, small_rss = sync(small, small_nodes, work / "cache-small")
        small_nodes.close()

        print()
        print(f"{'measure':<52}{'value':>16}  target")
        rows = [
            ("plain concurrent upload (baseline), median, s",
             f"{base_s:.2f}", " ".join(f"{x:.2f}" for x in base_runs)),
            ("fmeaa full sync, median, s", f"{full_s:.2f}", " ".join(f"{x:.2f}" for x in full_runs)),
            ("full sync / baseline", f"{full_s / base_s:.2f}x", "<= 1.3x"),
            ("HTTP requests received by nodes: sync / baseline",
             f"{full_requests:,} / {base_requests:,}", ""),
            ("fmeaa full sync as timed inside fmeaa (no start-up), s", f"{full_in:.2f}", ""),
            ("client CPU seconds: fmeaa full sync / baseline", f"{full_cpu:.2f} / {base_cpu:.2f}",
             ""),
            ("file bytes received by nodes: sync / baseline", f"{full_bytes / base_bytes:.3f}", "1.000"),
            ("no-op re-sync, s", f"{noop_s:.2f}", ""),
            ("no-op re-sync / full sync (process wall time)", f"{100 * noop_s / full_s:.1f}%",
             "<= 5%"),
            ("  the same, as timed inside fmeaa (no start-up)", f"{100 * noop_in / full_in:.1f}%",
             "<= 5%"),
            ("no-op re-sync file bytes sent", f"{noop_bytes:,}", "0"),
            (f"1% changed ({len(changed)} files): sync, s", f"{delta_s:.2f}", ""),
            ("1% changed: bytes sent / (bytes changed x nodes)",
             f"{delta_bytes / (changed_bytes * a.nodes):.3f}x", "<= 1.1x"),
            (f"peak RSS, fmeaa, {small_total / 1e6:,.0f} MB content", f"{small_rss / 1024:.0f} MiB", ""),
            (f"peak RSS, fmeaa, {total / 1e6:,.0f} MB content", f"{full_rss / 1024:.0f} MiB",
             "flat"),
            ("peak RSS ratio (4x content)", f"{full_rss / small_rss:.2f}x", "~1x"),
            ("peak RSS, baseline uploader", f"{base_rss / 1024:.0f} MiB", ""),
        ]
        for name, value, target in rows:
            print(f"{name:<52}{value:>16}  {target}")
        print(f"\n(small-content sync took {small_s:.2f} s; no-op peak RSS {noop_rss / 1024:.0f} MiB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
