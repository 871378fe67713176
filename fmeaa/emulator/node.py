"""EmulatedNode (one FME node on a 127.0.0.1 port) and Sandbox (N of them plus an inventory)."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmeaa.emulator.faults import Faults
from fmeaa.emulator.listener import EmulatorHTTPServer

if TYPE_CHECKING:
    from fmeaa.emulator.load_balancer import EmulatedLoadBalancer
from fmeaa.emulator.state import NodeState
from fmeaa.emulator.versions import NEWEST, FmeVersion, version_named

LOOPBACK = "127.0.0.1"


class EmulatedNode:
    """A real HTTP server for one emulated node. `stop()`/`start()` keep the same port, so a
    "down" node comes back where clients expect it."""

    def __init__(self, name: str, data_dir: Path, password: str, persist: bool = False,
                 port: int = 0, fme_version: str = NEWEST) -> None:
        self.name = name
        self.version: FmeVersion = version_named(fme_version)
        self.state = NodeState(data_dir, persist=persist, password=password)
        self.faults = Faults()
        # Counters for tests and the benchmark (GET /__emulator__/stats).
        self.request_count = 0
        self.requests_by_path: Counter[str] = Counter()  # "GET /fmeapiv4/…/{repo}/items" → n
        self.uploaded_bytes = 0  # file bytes received by item and resource uploads
        self.downloaded_bytes = 0  # file bytes sent by downloads (items, resources, packages)
        self.downloads: Counter[str] = Counter()  # the same by kind: item, resource:CONNECTION…
        self.in_flight = 0  # requests being served now
        self.max_in_flight = 0  # the most ever served at once
        self.throttled = 0  # requests answered 429 (Faults.throttle_*)
        self._counter_lock = threading.Lock()
        # Notified when a request starts or ends (tests wait on it instead of sleeping).
        self._activity = threading.Condition(self._counter_lock)
        self.port = port
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def count_request(self, method: str, route: Any) -> int:
        """Count one request by the route it matched; returns how many are in flight now."""
        key = f"{method} {route.template}" if route is not None else f"{method} (no route)"
        with self._activity:
            self.request_count += 1
            self.requests_by_path[key] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._activity.notify_all()
            return self.in_flight

    def count_download(self, what: str, size: int) -> None:
        with self._counter_lock:
            self.downloaded_bytes += size
            self.downloads[what] += size

    def request_done(self) -> None:
        with self._activity:
            self.in_flight -= 1
            self._activity.notify_all()

    def reset_counters(self) -> None:
        with self._counter_lock:
            self.request_count = self.uploaded_bytes = self.downloaded_bytes = 0
            self.max_in_flight = self.throttled = 0
            self.requests_by_path.clear()
            self.downloads.clear()

    def wait_until(self, condition: Callable[[EmulatedNode], bool], timeout_s: float) -> bool:
        """Block until `condition(node)` holds, re-checked whenever a request starts or ends
        (for tests: "after N requests", "once idle"), or `timeout_s` passes: whether it holds."""
        with self._activity:
            return self._activity.wait_for(lambda: condition(self), timeout_s)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> EmulatedNode:
        if self._server is None:
            self._server = EmulatorHTTPServer((LOOPBACK, self.port), self)
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(target=self._server.serve_forever,
                                            kwargs={"poll_interval": 0.05},
                                            name=f"fme-emulator-{self.name}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Take the node down: its port refuses connections until `start()`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.drop_connections()
            self._server = None


class Sandbox:
    """N emulated nodes on loopback, each with its own state directory, and a node inventory in
    the same shape as the Pulumi stack outputs (schema v1)."""

    def __init__(self, count: int = 3, root: Path | None = None, password: str = "",
                 persist: bool = False, prefix: str = "fme", fme_version: str = NEWEST,
                 versions: dict[str, str] | None = None, load_balancer: bool = False) -> None:
        self._tmp = None if root else tempfile.TemporaryDirectory(prefix="fmeaa-sandbox-")
        self.root = Path(root or self._tmp.name).resolve()  # type: ignore[union-attr]
        self.password = password or secrets.token_urlsafe(16)
        self.persist = persist
        self.prefix = prefix
        self.fme_version = version_named(fme_version).name  # every node's, unless `versions`
        self.versions = dict(versions or {})  # node name → FME version (a mixed cluster)
        for version in self.versions.values():
            version_named(version)  # fail before any node starts
        self.nodes: list[EmulatedNode] = []
        # With `load_balancer`, an emulated ELBv2 (moto) whose target groups hold the nodes.
        self.load_balancer: EmulatedLoadBalancer | None = None
        if load_balancer:
            from fmeaa.emulator.load_balancer import EmulatedLoadBalancer

            self.load_balancer = EmulatedLoadBalancer(cluster="sandbox")
        for _ in range(count):
            self.add_node(register=True)

    def add_node(self, name: str | None = None, fme_version: str | None = None,
                 register: bool = False) -> EmulatedNode:
        """A new node (of `fme_version`, default the sandbox's). With a load balancer it gets an
        instance, registered only if `register` (a node added later is seeded before it serves:
        `fmeaa seed` registers it)."""
        name = name or f"{self.prefix}-{len(self.nodes) + 1}"
        version = fme_version or self.versions.get(name, self.fme_version)
        node = EmulatedNode(name, self.root / name, self.password, self.persist,
                            fme_version=version).start()
        self.nodes.append(node)
        if self.load_balancer is not None:
            self.load_balancer.add_node(name, register=register)
        return node

    def node(self, name: str) -> EmulatedNode:
        return next(n for n in self.nodes if n.name == name)

    def inventory(self, load_balancer_url: str = "http://127.0.0.2:9") -> dict[str, Any]:
        """Pulumi-output-shaped inventory. The "load balancer" is a distinct loopback address
        no node uses, so the sync's refuse-the-LB rule can be exercised."""
        lb = self.load_balancer
        ids = lb.instance_ids if lb is not None else {}
        return {
            "inventoryVersion": 1, "clusterName": "sandbox", "region": "local",
            "fmeGeneration": "flow",
            "loadBalancer": {"dnsName": load_balancer_url.split("//")[1].split(":")[0],
                             "url": load_balancer_url, "targetGroupArn": None,
                             "websocketTargetGroupArn": None,
                             **(lb.inventory_fields() if lb is not None else {})},
            "nodes": [{"name": n.name, "instanceId": ids.get(n.name, f"emulated-{n.name}"),
                       "privateIp": LOOPBACK, "restUrl": n.url, "dbEndpoint": None,
                       "dbSecretArn": None, "shareId": str(self.root / n.name),
                       "shareKind": "emulated"}
                      for n in self.nodes],
        }

    def write_inventory(self, path: Path) -> Path:
        """Written whole or not at all (temp file + rename): a reader polling for the file
        never sees half of it."""
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(json.dumps(self.inventory(), indent=2))
        os.replace(partial, path)
        return path

    def close(self) -> None:
        for node in self.nodes:  # each stop wakes its server's loop: no wait for a poll
            node.stop()
        if self.load_balancer is not None:
            self.load_balancer.close()
            self.load_balancer = None
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
