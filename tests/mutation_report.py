"""Kill ratio per core module from mutmut's results (`./dev mutate` runs it after `mutmut run`).

A mutant counts against its module when it survived, timed out or no test reached it, unless it
is listed in EQUIVALENT below with the reason it cannot change behaviour. Exit 1 when any module
is below TARGET, so the habit can gate a branch."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass

TARGET = 0.90

# mutant name → why no test can tell it from the original (reviewed by hand).
EQUIVALENT: dict[str, str] = {}

_LINE = re.compile(r"^\s*(?P<name>(?P<module>[\w.]+)\.x[ǁ_].*__mutmut_\d+): (?P<status>.+)$")


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
        return self.counts["killed"]

    @property
    def ratio(self) -> float:
        return self.killed / self.total if self.total else 1.0


def parse(results: str) -> tuple[dict[str, ModuleScore], list[str]]:
    """`mutmut results --all true` output → scores per module, and the mutants still alive."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    equivalent: Counter[str] = Counter()
    alive = []
    for line in results.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        name, module, status = match["name"], match["module"], match["status"].strip()
        if name in EQUIVALENT:
            equivalent[module] += 1
        elif status != "killed":
            alive.append(f"{name}: {status}")
        counts[module][status] += 1
    return {m: ModuleScore(m, c, equivalent[m]) for m, c in sorted(counts.items())}, alive


def main() -> int:
    results = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"],
                             capture_output=True, text=True, check=True).stdout
    scores, alive = parse(results)
    print(f"{'module':<34} {'mutants':>7} {'killed':>6} {'equiv.':>6} {'ratio':>6}")
    for s in scores.values():
        mark = "" if s.ratio >= TARGET else "  < target"
        print(f"{s.module:<34} {sum(s.counts.values()):>7} {s.killed:>6} {s.equivalent:>6} "
              f"{s.ratio:>6.1%}{mark}")
    if alive:
        print(f"\n{len(alive)} mutant(s) alive (`.venv/bin/mutmut show NAME` shows one):")
        print("\n".join(f"  {a}" for a in alive))
    return 0 if all(s.ratio >= TARGET for s in scores.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
