"""The content manifest: every problem reported, with where it is, before any node is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from fmeaa.sync.manifest import ContentError, load_content_dir
from tests.sync_helpers import EXAMPLE, copy_example


def broken(tmp_path: Path, old: str, new: str) -> Path:
    root = copy_example(tmp_path / "c")
    manifest = root / "fmeaa-content.yaml"
    text = manifest.read_text()
    assert old in text
    manifest.write_text(text.replace(old, new, 1))
    return root


def test_example_content_is_valid() -> None:
    content = load_content_dir(EXAMPLE)
    m = content.manifest
    assert [r.name for r in m.repositories] == ["Roads", "Parcels"]
    assert sum(len(r.items) for r in m.repositories) == 5
    assert {s.policy.value for s in m.schedules} == {"one"}
    files = content.resource_files(m.resources[0])
    assert [p for p, _ in files] == ["/reference/boundary.geojson",
                                     "/reference/lookup/road_classes.csv",
                                     "/reference/lookup/zones.csv"]


@pytest.mark.parametrize("old, new, message", [
    ("services: [fmedatastreaming]", "services: [fmestreaming]", "unknown service(s) ['fmestreaming']"),
    ("topics: [PARCELS_LOADED]\n    properties:\n      recipient",
     "topics: [NOPE]\n    properties:\n      recipient", "topic 'NOPE' is not in topics"),
    ("workspace: load_parcels.fmw", "workspace: gone.fmw",
     "workspace Parcels/gone.fmw is not in repositories"),
    ('cron: "0 0 2 * * ?"', 'cron: "0 0 2 * * *"', "needs '?' in day-of-month or day-of-week"),
    ("policy: one\n  - name: hourly", "policy: some\n  - name: hourly", "schedules.0.policy"),
    ("connection: FME_SHAREDRESOURCE_DATA", "connection: FME_SHAREDRESOURCE_LOG",
     "holds one node's own files"),
    ("recipient: gis-team@example.com", "smtp_password: {secret: 'plain-text-password'}",
     "secret references look like"),
    ("- name: Parcels\n", "- name: Roads\n", "repositories: 'Roads' appears twice"),
    ("file: workspaces/roads/clip_roads.fmw", "file: ../../etc/passwd", "outside the content"),
    ("resources:\n", "connections:\n  - {name: pg, category: database, type: PostgreSQL,\n"
     "     parameters: {HOST: db, PASSWORD: hunter2}}\nresources:\n",
     "parameter(s) ['PASSWORD'] hold credentials"),
])
def test_specific_errors(tmp_path: Path, old: str, new: str, message: str) -> None:
    with pytest.raises(ContentError) as caught:
        load_content_dir(broken(tmp_path, old, new))
    assert message in str(caught.value)
    assert "fmeaa-content.yaml" in str(caught.value)


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "c")
    (root / "workspaces/roads/clip_roads.fmw").unlink()
    (root / "workspaces/parcels/load_parcels.fmw").unlink()
    with pytest.raises(ContentError) as caught:
        load_content_dir(root)
    assert "2 problem(s)" in str(caught.value)


def test_missing_manifest_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ContentError, match="fmeaa export"):
        load_content_dir(tmp_path)
