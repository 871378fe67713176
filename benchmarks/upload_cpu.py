"""The client's CPU per REST V4 item upload (multipart/form-data): N small items uploaded one
after another to one emulated FME Flow 2026.1 node (V4 only) that runs in its own process, so
`time.process_time()` counts fmeaa's side alone. The figure quoted in README "Speed".

    .venv/bin/python benchmarks/upload_cpu.py            # 300 items of 20 KB, best of 3 runs
    .venv/bin/python benchmarks/upload_cpu.py --items 100 --size 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from fmeaa.client import connect

PASSWORD = secrets.token_urlsafe(16)  # this run's emulated node only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--size", type=int, default=20_000, help="bytes per item")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fmeaa-upload-cpu-") as tmp:
        work = Path(tmp)
        inventory = work / "nodes.json"
        server = subprocess.Popen(
            [sys.executable, "-m", "fmeaa", "sandbox", "--nodes", "1", "--inventory",
             str(inventory), "--state-dir", str(work / "state"), "--duration", "3600"],
            env={**os.environ, "FMEAA_PASSWORD": PASSWORD},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not inventory.exists():
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the sandbox did not start")
                time.sleep(0.1)
            node = json.loads(inventory.read_text())["nodes"][0]
            url = node["restUrl"]
            while True:
                try:
                    urllib.request.urlopen(f"{url}/__emulator__/stats", timeout=5).read()
                    break
                except OSError:
                    time.sleep(0.05)
            local = work / "item.fmw"
            local.write_bytes(os.urandom(args.size))
            client = connect(node["name"], url, username="admin", password=PASSWORD)
            client.login()
            per_upload = []
            for run in range(args.runs):
                repository = f"Bench{run}"
                client.create_repository(repository)
                started = time.process_time()
                for i in range(args.items):
                    client.upload_item(repository, local, name=f"item {i}.fmw")
                per_upload.append((time.process_time() - started) / args.items)
            client.close()
        finally:
            server.terminate()
            server.wait()
    print(f"{args.items} uploads of {args.size} bytes: "
          f"{min(per_upload) * 1000:.3f} ms CPU per upload (best of {args.runs}; runs: "
          + ", ".join(f"{p * 1000:.3f}" for p in per_upload) + ")")


if __name__ == "__main__":
    main()
