"""Mutation testing of the core (`./dev mutate`): mutmut per module group, kill ratio per module.

Each group mutates a few core modules against only the fast tests that cover them, in its own
working directory `.mutation/<group>/` (links to the project plus a generated `pyproject.toml`
with the group's `[tool.mutmut]`), so groups run separately, keep their own results, and a
mutant is only ever tested by its group's tests. mutmut records which of those tests reach
which function and runs only those against each mutant; tests that run fme-aa in a subprocess
never count, CLI tests through typer's CliRunner do.

A mutant is caught when a test failed on it, or when the tests did not finish in mutmut's time
limit (a hang is noticed too; mutmut's own score counts it so). It counts against its module
when it survived or no test reached it, unless it is listed in EQUIVALENT below with the reason
it cannot change behaviour. Exit 1 when any
module is below TARGET, so the habit can gate a branch.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

TARGET = 0.90
ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"


@dataclass(frozen=True)
class Group:
    name: str
    modules: tuple[str, ...]  # files mutated
    tests: tuple[str, ...]  # the tests run against them (files or node ids)
    # "forkserver" where the tests are not fork-safe: Pulumi's mocks run gRPC, which hangs in a
    # process forked from one that already used it.
    isolation: str = "fork"


GROUPS: tuple[Group, ...] = (
    Group("planner", ("fmeaa/sync/plan.py", "fmeaa/sync/snapshot.py"),
          ("tests/test_planner.py", "tests/test_snapshot.py", "tests/test_planner_properties.py")),
    Group("apply", ("fmeaa/sync/apply.py",),
          ("tests/test_apply.py",
           "tests/test_sync_speed.py::test_concurrent_apply_keeps_parents_before_children_and_deletes_last",
           "tests/test_sync_speed.py::test_a_write_refused_more_often_than_the_client_waits_is_retried_by_the_applier")),
    Group("manifest", ("fmeaa/sync/manifest.py",), ("tests/test_content_manifest.py",)),
    Group("cluster", ("fmeaa/cluster/inventory.py", "fmeaa/cluster/credentials.py"),
          ("tests/test_inventory.py", "tests/test_credentials.py",
           "tests/test_aws_discovery.py::test_discovery_by_ec2_tags",
           "tests/test_aws_discovery.py::test_discovery_of_an_unknown_cluster_says_what_it_looked_for",
           "tests/test_aws_discovery.py::test_discovery_reads_every_tag_page_and_takes_only_what_is_tagged",
           "tests/test_aws_discovery.py::test_a_cluster_without_a_load_balancer_has_none_in_its_inventory")),
    Group("seed", ("fmeaa/app/seed.py",), ("tests/test_seed.py",)),
    Group("security", ("components/security.py",), ("tests/test_security_policy.py",),
          isolation="forkserver"),
    # The pytester test runs a second pytest in a temporary directory, where mutmut finds no
    # configuration; the unit tests beside it cover the scanner.
    Group("secret-scan", ("tests/secret_scan.py",),
          ("tests/test_secret_scan.py", "--deselect",
           "tests/test_secret_scan.py::test_the_scanner_fails_a_leaking_test")),
)

# What every group's working directory links to (the project as the tests see it).
_PROJECT = ("fmeaa", "components", "config", "tests", "examples", "__main__.py", "Pulumi.yaml",
            "Pulumi.example.yaml", "pytest.ini")

# mutant name → why no test can tell it from the original (reviewed by hand).
_SEPARATOR = ("the separator inside a digested string: digests are only compared with digests "
              "made by the same code (never stored across versions), and no field holds it")
EQUIVALENT: dict[str, str] = {
    "fmeaa.sync.plan.x_plan_content__mutmut_7":
        "the default owner when there are no nodes: with no nodes nothing is planned, so it is "
        "never read",
    "fmeaa.sync.snapshot.x_body_digest__mutmut_34": _SEPARATOR,
    "fmeaa.sync.snapshot.x_item_digest__mutmut_3": _SEPARATOR,
    "fmeaa.sync.plan.x_desired_for_node__mutmut_11":
        "a copy of the snapshot instead of the snapshot itself when no schedule differs: the "
        "same entries either way (only memory differs)",
    **{f"fmeaa.sync.snapshot.x_file_entry__mutmut_{n}":
       "the size cap of the shared service-set table (1024 or 1025 sets, < or <=): it bounds "
       "memory; below and above it an entry holds the same services" for n in (6, 7)},
    "fmeaa.sync.apply.xǁNodeApplierǁ__init____mutmut_6":
        "the default step callback's return value, which apply never reads",
    **{f"fmeaa.sync.apply.xǁNodeApplierǁ{name}__mutmut_{n}":
       "the fallback for an entry without its sha256: file entries always carry it "
       "(`file_entry` requires it)" for name, n in (("_put_item", 57), ("_import_project", 38),
                                                  ("_put_resource", 26))},
    **{f"fmeaa.sync.apply.xǁNodeApplierǁ_import_project__mutmut_{n}":
       "node, method or path of the error for an imported package without its project: an "
       "error without HTTP status is reported by its message alone (`failure_text`), in its "
       "node's row" for n in (11, 12, 13, 20, 21, 22, 23)},
    **{f"fmeaa.sync.apply.xǁNodeApplierǁ_services_after_upload__mutmut_{n}":
       "the spelling of a learnt rule's key or of the \"unknown\" rule (another string, or "
       "upper case): keys stay distinct per upload kind and suffix, and any rule but \"keep\" "
       "or a tuple of services sets the services" for n in (4, 5, 6, 7, 8, 33, 34)},
    "fmeaa.sync.apply.xǁNodeApplierǁ_services_after_upload__mutmut_47":
        "the \"unknown\" rule read as a list of its letters instead of None: neither is ever a "
        "sorted list of services, so both set the services",
    "fmeaa.sync.apply.xǁNodeApplierǁ_put_item__mutmut_8":
        "the node's services unknown instead of as listed for a services-only update: the plan "
        "makes one only when the sorted services differ (same file, other digest), so both set "
        "them",
    "fmeaa.sync.apply.xǁNodeApplierǁapply__mutmut_27":
        "the kind of a wave read from its second action instead of its first: a wave is one "
        "kind (`_waves`)",
    "fmeaa.sync.apply.xǁNodeApplierǁapply__mutmut_44":
        "how many actions are queued ahead of the pool (4× or 5× the concurrency): the pool's "
        "workers bound what runs (tested); the queue only bounds memory",
    "fmeaa.sync.apply.xǁNodeApplierǁapply__mutmut_47":
        "stop reporting at the first action that never ran, instead of skipping it: those "
        "that never ran are always the last (each checks the lost-node flag as it starts, in "
        "plan order, and the flag is never cleared)",
    "fmeaa.sync.apply.x__waves__mutmut_2":
        "the \"no wave yet\" marker, None or \"\": neither equals a (kind, direction) pair",
    "fmeaa.sync.apply.x__waves__mutmut_5":
        "a wave's direction flag inverted (is / is not a delete): the same actions are grouped "
        "together either way",
    "fmeaa.cluster.inventory.x_check_targets__mutmut_43":
        "an endpoint URL without a host: \"\" and \"XXXX\" are both not loopback (refused alike)",
    **{f"fmeaa.cluster.inventory.x_load_inventory__mutmut_{n}":
       "the file's encoding, None (the locale's) or \"UTF-8\": the same on a UTF-8 locale, as on "
       "every machine this project runs on" for n in (3, 5)},
    **{f"fmeaa.cluster.inventory.x_discover_inventory__mutmut_{n}":
       "the default for an instance without tags: instances are found BY their tags, so they "
       "always have some" for n in (53, 55)},
    **{f"fmeaa.cluster.inventory.x__discover_load_balancer__mutmut_{n}":
       "the default for a list AWS always returns (empty when there is none): load balancers, "
       "target groups, the tags of a described resource" for n in (10, 12, 18, 20, 58, 60)},
    **{f"fmeaa.cluster.inventory.x__discover_load_balancer__mutmut_{n}":
       "the default for an ARN DescribeTags did not describe: every ARN was passed to it, and it "
       "describes each" for n in (67, 69, 77, 79)},
    **{f"fmeaa.cluster.inventory.x__discover_load_balancer__mutmut_{n}":
       "the default name of a group without a Name tag, \"\" or \"XXXX\": neither ends with "
       "-web or -ws" for n in (99, 117)},
    **{f"fmeaa.sync.manifest.x__error_lines__mutmut_{n}":
       "the location shown for an error without one: ContentManifest has no model-level "
       "validator and a manifest that is no mapping is refused before, so every error has a "
       "location" for n in (9, 10)},
    **{f"fmeaa.sync.manifest.x__raw_items__mutmut_{n}":
       "the name standing in for an item with neither `name` nor `file` (itself reported): it "
       "only matters to a schedule naming that very placeholder" for n in (26, 28, 31)},
    "fmeaa.sync.manifest.x__reference_problems__mutmut_14":
        "an explicit `name:` checked again: its type (`Name`) already refused a bad one",
    **{f"fmeaa.sync.manifest.xǁContentDirectoryǁ_walk__mutmut_{n}":
       "the sort key of the walked files: the local path is the folder joined with the same "
       "parts, so (parts, path) pairs sort alike by either" for n in (63, 65)},
    **{f"fmeaa.sync.manifest.xǁContentDirectoryǁproblems__mutmut_{n}":
       "`want_dir=None` for `False`: both falsy" for n in (4, 12)},
    **{f"fmeaa.sync.manifest.x_load_content_dir__mutmut_{n}":
       "the loader when PyYAML lacks libyaml (CSafeLoader): this project's PyYAML has it"
       for n in (35, 38)},
    **{f"fmeaa.sync.manifest.x_load_content_dir__mutmut_{n}":
       "the manifest's encoding, None (the locale's) or \"UTF-8\": the same on a UTF-8 locale"
       for n in (48, 50)},
    **{f"fmeaa.sync.manifest.x_load_content_dir__mutmut_{n}":
       "a YAML error without a position: every MarkedYAMLError PyYAML raises while loading "
       "carries one" for n in (54, 59, 60)},
    **{f"components.security.x_efs_file_system_policy__mutmut_{n}":
       "a statement's Sid (its label): AWS gives it no meaning" for n in (12, 13, 14, 48, 49, 50)},
    "fmeaa.app.seed.x_seed_node__mutmut_1":
        "the default poll interval (5 s or 6 s): a timing choice; callers and tests pass theirs",
    **{f"fmeaa.app.seed.x_seed_node__mutmut_{n}":
       "the region of the seed's own inventory: nothing reads it (credentials, the serial and "
       "secret references take the request's region directly; the engine reads no AWS)"
       for n in (32, 35)},
    **{f"fmeaa.app.seed.x__seed__mutmut_{n}":
       "the health probe's per-call timeout (30 s, 31 s or the client's default): a timing choice"
       for n in (23, 27, 28)},
    **{f"fmeaa.app.seed.x_seed_node__mutmut_{n}":
       "the seed engine's tuning for ONE node: 1 or 2 workers, a 60 s, 61 s or default per-call "
       "timeout" for n in (57, 59, 60, 62, 63)},
    **{f"fmeaa.app.seed.x__seed__mutmut_{n}":
       "the digest cache for the content files: it has no file, so enabled or not (or none) "
       "nothing is remembered beyond this one read, in which each file is hashed once anyway"
       for n in (110, 112, 113)},
    "fmeaa.app.seed.x__seed__mutmut_133": "`prune=None` for `False`: both falsy",
    **{f"tests.secret_scan.x_run_scanned__mutmut_{n}":
       "`check=None` or no `check`: subprocess.run's default is False" for n in (11, 14)},
    **{f"tests.secret_scan.x_watch_{f}__mutmut_4":
       "the guard's default, None or False: both falsy" for f in ("pulumi_mocks", "token_issuer")},
    **{f"tests.secret_scan.x__decoded_forms__mutmut_{n}":
       "keeping a run's trailing '=' (or stripping leading ones, which a run never has): they "
       "are exactly the padding the aligned chunk would get back" for n in (4, 5)},
    "tests.secret_scan.x__decoded_forms__mutmut_8":
        "a fifth start offset: it is the first alignment one quantum later",
    "tests.secret_scan.x__decoded_forms__mutmut_22":
        "three '=' where one is needed: the decoder ignores padding beyond the data",
    "tests.secret_scan.x__decoded_forms__mutmut_30": "\"UTF-8\" or \"utf-8\": one codec",
    "tests.secret_scan.x__decoded_forms__mutmut_33":
        "giving up on the URL-safe decoder when the standard one fails: both drop characters "
        "outside their alphabet, so only a length both share can fail them",
    "fmeaa.sync.snapshot.x_split_item_key__mutmut_3":
        "partition vs rpartition at '/': repository and item names never contain '/' (refused "
        "by the manifest's name check; FME's paths split on it), so the first '/' is the last",
}

CAUGHT = ("killed", "timeout")
_LINE = re.compile(r"^\s*(?P<name>(?P<module>[\w.]+)\.x[ǁ_].*__mutmut_\d+): (?P<status>.+)$")


def group_config(group: Group) -> str:
    """The `[tool.mutmut]` of one group: mutate its modules, run its tests."""
    roots = sorted({m if m.startswith("tests/") else m.split("/")[0] + "/" for m in group.modules})
    also = [p + ("/" if (ROOT / p).is_dir() else "") for p in _PROJECT
            if not any(r.rstrip("/") == p for r in roots)]

    def toml_list(values: list[str] | tuple[str, ...]) -> str:
        return "[" + ", ".join(f'"{v}"' for v in values) + "]"
    return "\n".join([
        "# Generated by tests/mutation_report.py for the group " + group.name + ".",
        "[tool.mutmut]",
        f"source_paths = {toml_list(roots)}",
        f"only_mutate = {toml_list(group.modules)}",
        f"also_copy = {toml_list(also)}",
        f"pytest_add_cli_args_test_selection = {toml_list(group.tests)}",
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]',
        f'process_isolation = "{group.isolation}"',
        "",
    ])


def prepare(group: Group, fresh: bool = False) -> Path:
    """`.mutation/<group>/`: links to the project and the group's pyproject.toml."""
    work = WORK / group.name
    if fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    for name in _PROJECT:
        link = work / name
        if not link.is_symlink():
            link.symlink_to(ROOT / name)
    config = work / "pyproject.toml"
    text = group_config(group)
    if not config.exists() or config.read_text() != text:
        config.write_text(text)
    return work


def run_group(group: Group, children: int, fresh: bool = False) -> float:
    """mutmut run for one group (its log in `.mutation/<group>/run.log`); seconds taken.

    mutmut re-tests a mutant only when its function changed, so the mutants still alive from an
    earlier run (not killed, not listed as equivalent) are named again: new tests get their
    chance at them."""
    work = prepare(group, fresh)
    before = _tested_alive(group)
    started = time.monotonic()
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    with open(work / "run.log", "w") as log:
        command = [mutmut, "run", "--max-children", str(children)]
        subprocess.run(command, cwd=work, stdout=log, stderr=subprocess.STDOUT, check=False)
        again = sorted(before & _tested_alive(group))  # alive then, and not re-tested since
        if again:
            subprocess.run(command + again, cwd=work, stdout=log, stderr=subprocess.STDOUT,
                           check=False)
    return time.monotonic() - started


def _tested_alive(group: Group) -> set[str]:
    """Mutants a finished test run left alive (never those not tested yet)."""
    _, alive = parse(results_of(group))
    return {name for name, _, status in (a.partition(": ") for a in alive)
            if status != "not checked"}


def results_of(group: Group) -> str:
    work = WORK / group.name
    if not (work / "mutants").is_dir():
        return ""
    mutmut = Path(sys.executable).with_name("mutmut")
    return subprocess.run([str(mutmut), "results", "--all", "true"], cwd=work,
                          capture_output=True, text=True, check=False).stdout


@dataclass
class ModuleScore:
    module: str
    counts: Counter[str]
    equivalent: int

    @property
    def total(self) -> int:
        return sum(self.counts.values()) - self.equivalent

    @property
    def killed(self) -> int:
        """Caught: a test failed on it, or the tests did not finish (a hang)."""
        return self.counts["killed"] + self.counts["timeout"]

    @property
    def ratio(self) -> float:
        return self.killed / self.total if self.total else 1.0


def parse(results: str, stale: list[str] | None = None
          ) -> tuple[dict[str, ModuleScore], list[str]]:
    """`mutmut results --all true` output → scores per module, and the mutants still alive.
    Listed equivalents that a test killed are appended to `stale` (the list needs review)."""
    stale = [] if stale is None else stale
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    equivalent: Counter[str] = Counter()
    alive = []
    for line in results.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        name, module, status = match["name"], match["module"], match["status"].strip()
        if name in EQUIVALENT and status in CAUGHT:
            stale.append(name)  # killed after all: no longer equivalent (or renumbered)
        elif name in EQUIVALENT:
            equivalent[module] += 1
        elif status not in CAUGHT:
            alive.append(f"{name}: {status}")
        counts[module][status] += 1
    return {m: ModuleScore(m, c, equivalent[m]) for m, c in sorted(counts.items())}, alive


def report(results: str) -> int:
    stale: list[str] = []
    scores, alive = parse(results, stale)
    print(f"{'module':<34} {'mutants':>7} {'caught':>6} {'equiv.':>6} {'ratio':>6}")
    for s in scores.values():
        mark = "" if s.ratio >= TARGET else "  < target"
        print(f"{s.module:<34} {sum(s.counts.values()):>7} {s.killed:>6} {s.equivalent:>6} "
              f"{s.ratio:>6.1%}{mark}")
    if alive:
        print(f"\n{len(alive)} mutant(s) alive (`cd .mutation/GROUP && ../../.venv/bin/mutmut "
              "show NAME` shows one):")
        print("\n".join(f"  {a}" for a in alive))
    if stale:
        print(f"\n{len(stale)} mutant(s) listed in EQUIVALENT were killed (renumbered after a "
              "change? review the list):")
        print("\n".join(f"  {name}" for name in stale))
    return 0 if scores and all(s.ratio >= TARGET for s in scores.values()) else 1


def equivalents_markdown() -> str:
    """EQUIVALENT as a list: one line per reason, with how many mutants of which module."""
    by_reason: dict[str, Counter[str]] = defaultdict(Counter)
    for name, reason in EQUIVALENT.items():
        match = _LINE.match(f"{name}: x")
        by_reason[reason][match["module"] if match else name] += 1
    return "\n".join(
        f"- {', '.join(f'`{m}` ×{n}' for m, n in sorted(modules.items()))}: {reason}"
        for reason, modules in by_reason.items())


def main(argv: list[str] | None = None) -> int:
    names = [g.name for g in GROUPS]
    parser = argparse.ArgumentParser(prog="./dev mutate", description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", metavar="GROUP", help=f"of: {', '.join(names)}")
    parser.add_argument("--fresh", action="store_true", help="forget earlier results")
    parser.add_argument("--report-only", action="store_true", help="run nothing, report")
    parser.add_argument("--equivalents", action="store_true",
                        help="print the listed equivalent mutants by reason (markdown)")
    parser.add_argument("--max-children", type=int,
                        default=int(os.environ.get("MUTATE_CHILDREN", "2")))
    args = parser.parse_args(argv)
    unknown = sorted(set(args.groups) - set(names))
    if unknown:
        parser.error(f"unknown group(s) {', '.join(unknown)}; groups: {', '.join(names)}")
    if args.equivalents:
        print(equivalents_markdown())
        return 0
    chosen = [g for g in GROUPS if not args.groups or g.name in args.groups]
    if not args.report_only:
        for group in chosen:
            print(f"mutmut: {group.name} ({', '.join(group.modules)}) …", flush=True)
            seconds = run_group(group, args.max_children, args.fresh)
            print(f"  {seconds:.0f} s (log: .mutation/{group.name}/run.log)", flush=True)
    return report("".join(results_of(g) for g in chosen))


if __name__ == "__main__":
    raise SystemExit(main())
