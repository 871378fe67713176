"""The mutation report counts what it should (it gates `./dev mutate`)."""

from __future__ import annotations

from tests import mutation_report

RESULTS = """\
    fmeaa.sync.plan.x_plan_node__mutmut_1: killed
    fmeaa.sync.plan.x_plan_node__mutmut_2: survived
    fmeaa.sync.plan.xǁNodePlanǁcount__mutmut_1: no tests
    fmeaa.sync.plan.x_plan_node__mutmut_3: killed
    fmeaa.cluster.inventory.x__is_loopback__mutmut_1: killed
    fmeaa.cluster.inventory.x__is_loopback__mutmut_2: timeout
"""


def test_survivors_and_untested_mutants_count_against_their_module(monkeypatch) -> None:
    scores, alive = mutation_report.parse(RESULTS)
    plan, inventory = scores["fmeaa.sync.plan"], scores["fmeaa.cluster.inventory"]
    assert (plan.killed, plan.total, round(plan.ratio, 3)) == (2, 4, 0.5)
    assert (inventory.killed, inventory.total) == (2, 2)  # a timeout (a hang) is caught
    assert alive == ["fmeaa.sync.plan.x_plan_node__mutmut_2: survived",
                     "fmeaa.sync.plan.xǁNodePlanǁcount__mutmut_1: no tests"]


def test_listed_equivalents_leave_the_denominator(monkeypatch) -> None:
    monkeypatch.setitem(mutation_report.EQUIVALENT,
                        "fmeaa.sync.plan.x_plan_node__mutmut_2", "reason")
    scores, alive = mutation_report.parse(RESULTS)
    assert (scores["fmeaa.sync.plan"].total, scores["fmeaa.sync.plan"].equivalent) == (3, 1)
    assert not any("mutmut_2: survived" in a for a in alive)


def test_a_listed_equivalent_that_was_killed_is_flagged_not_subtracted(monkeypatch) -> None:
    monkeypatch.setitem(mutation_report.EQUIVALENT,
                        "fmeaa.sync.plan.x_plan_node__mutmut_1", "reason")
    stale: list[str] = []
    scores, _ = mutation_report.parse(RESULTS, stale)
    assert stale == ["fmeaa.sync.plan.x_plan_node__mutmut_1"]
    assert (scores["fmeaa.sync.plan"].total, scores["fmeaa.sync.plan"].killed) == (4, 2)


def test_the_readme_lists_every_equivalent_mutant_with_its_reason() -> None:
    readme = (mutation_report.ROOT / "README.md").read_text()
    assert mutation_report.equivalents_markdown() in readme


def test_every_group_mutates_existing_files_with_existing_tests() -> None:
    for group in mutation_report.GROUPS:
        assert all((mutation_report.ROOT / m).is_file() for m in group.modules), group.name
        tests = [t.split("::")[0] for t in group.tests if t.startswith("tests/")]
        assert tests and all((mutation_report.ROOT / t).is_file() for t in tests), group.name
        config = mutation_report.group_config(group)
        assert f"only_mutate = [{', '.join(repr(m).replace(chr(39), chr(34)) for m in group.modules)}]" \
            in config
