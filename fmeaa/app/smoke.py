"""The smoke job that gates a canary wave (`fmeaa sync --canary … --smoke REPO/WS.fmw`) or a
node of `fmeaa rolling --smoke`: one workspace run on the node itself, directly, with its
published parameters; it passes only when the job ends in SUCCESS (the job status, as FME
reports it: fmeflow-cli `run.go`, `jobs.go`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fmeaa.client import FmeApiError, FmeClient
from fmeaa.cluster.node_lifecycle import LifecycleError
from fmeaa.sync.apply import failure_text


@dataclass(frozen=True)
class Smoke:
    repository: str
    workspace: str
    parameters: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 600.0

    @property
    def label(self) -> str:
        return f"{self.repository}/{self.workspace}"

    @classmethod
    def parse(cls, spec: str, parameters: list[str] | tuple[str, ...] = (),
              timeout_s: float = 600.0) -> Smoke:
        """`--smoke REPO/WORKSPACE.fmw` and `--smoke-param NAME=VALUE` (repeatable); every
        problem is refused at once, before any node is touched."""
        problems = []
        repository, _, workspace = spec.partition("/")
        if not repository or not workspace or "/" in workspace:
            problems.append(f"--smoke {spec!r}: expected REPOSITORY/WORKSPACE.fmw")
        values: dict[str, str] = {}
        for p in parameters:
            name, sep, value = p.partition("=")
            if not sep or not name:
                problems.append(f"--smoke-param {p!r}: expected NAME=VALUE")
            elif name in values:
                problems.append(f"--smoke-param {name} is given twice")
            else:
                values[name] = value
        if problems:
            raise LifecycleError("refusing the smoke job:\n" +
                                 "\n".join(f"  - {p}" for p in problems))
        return cls(repository, workspace, values, timeout_s)

    def run(self, client: FmeClient, poll_s: float = 1.0) -> str | None:
        """Run it on this node: None when it succeeded, else what happened."""
        try:
            job = client.run_job(self.repository, self.workspace, self.parameters,
                                 timeout_s=self.timeout_s, poll_s=poll_s)
        except FmeApiError as exc:
            return f"smoke job {self.label} could not run: {failure_text(exc)}"
        if job["status"] == "SUCCESS":
            return None
        message = f": {job['statusMessage']}" if job.get("statusMessage") else ""
        return f"smoke job {self.label} (job {job['id']}) ended in {job['status']}{message}"
