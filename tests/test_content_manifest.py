"""The content manifest: every problem reported, with where it is, before any node is touched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fmeaa.sync.manifest import ContentError, _entry_names, load_content_dir, name_problem
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


# --- nothing is read outside the content directory (symlinks included) ---------------------------
def _add_item(root: Path, file: str, name: str | None = None) -> None:
    manifest = root / "fmeaa-content.yaml"
    entry = f"{{file: '{file}'" + (f", name: '{name}'" if name else "") + "}"
    text = manifest.read_text()
    anchor = "      - file: workspaces/roads/validate_roads.fmw\n"
    manifest.write_text(text.replace(anchor, anchor + f"      - {entry}\n", 1))


@pytest.mark.parametrize("link, target_is_dir, message", [
    ("workspaces/roads/leak.fmw", False, "repositories[Roads]: 'workspaces/roads/leak.fmw' is a "
                                         "symbolic link to"),
    ("resources/data/leak.csv", False, "resources[resources/data]: 'resources/data/leak.csv' is a "
                                       "symbolic link to"),
    ("resources/data/leaked-dir", True, "resources[resources/data]: 'resources/data/leaked-dir' is "
                                        "a symbolic link to"),
])
def test_a_symlink_leaving_the_content_directory_is_refused(tmp_path: Path, link: str,
                                                            target_is_dir: bool,
                                                            message: str) -> None:
    root = copy_example(tmp_path / "c")
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "secret.txt").write_text("not for the nodes")
    (root / link).symlink_to(secret if target_is_dir else secret / "secret.txt")
    if link.endswith(".fmw"):
        _add_item(root, link)
    with pytest.raises(ContentError) as caught:
        load_content_dir(root)
    text = str(caught.value)
    assert message in text and str(secret) in text
    assert "outside the content directory" in text and "copy the file" in text


def test_a_resource_folder_that_is_a_symlink_out_is_refused(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "c")
    (tmp_path / "elsewhere").mkdir()
    (root / "resources/linked").symlink_to(tmp_path / "elsewhere")
    manifest = root / "fmeaa-content.yaml"
    manifest.write_text(manifest.read_text().replace("source: resources/data",
                                                     "source: resources/linked"))
    with pytest.raises(ContentError, match=r"resources\[resources/linked\]: 'resources/linked' "
                                           r"is a symbolic link to .*outside the content"):
        load_content_dir(root)


def test_symlinks_inside_the_content_directory_are_fine(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "c")
    (root / "workspaces/roads/alias.fmw").symlink_to(root / "workspaces/roads/clip_roads.fmw")
    _add_item(root, "workspaces/roads/alias.fmw")
    (root / "resources/data/more").symlink_to(root / "workspaces/parcels")  # a directory link
    content = load_content_dir(root)
    files = [p for p, _ in content.resource_files(content.manifest.resources[0])]
    assert "/reference/more/load_parcels.fmw" in files
    assert root / "workspaces/roads/alias.fmw" in content.files()


def test_a_sibling_folder_sharing_the_name_prefix_is_outside(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "content")
    (tmp_path / "content-evil").mkdir()
    (tmp_path / "content-evil/x.fmw").write_text("#! not ours\n")
    _add_item(root, "../content-evil/x.fmw")
    with pytest.raises(ContentError, match=r"'\.\./content-evil/x\.fmw' is outside the content"):
        load_content_dir(root)


# --- names that FME and URLs accept ----------------------------------------------------------------
@pytest.mark.parametrize("name, message", [
    ("a%2Fb.fmw", "contains '%'"), ("a#b.fmw", "contains '#'"), ("what?.fmw", "contains '?'"),
    ("tab\there.fmw", "contains '\\t'"), ("..", "cannot be '.' or '..'"),
])
def test_names_that_cannot_round_trip_through_a_url_are_refused(tmp_path: Path, name: str,
                                                                message: str) -> None:
    root = copy_example(tmp_path / "c")
    _add_item(root, "workspaces/roads/clip_roads.fmw", name=name)
    with pytest.raises(ContentError) as caught:
        load_content_dir(root)
    assert f"repositories.0.items.2.name (Roads / {name}): {name!r} {message}" in str(caught.value)


def test_an_item_name_taken_from_its_file_is_checked_too(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "c")
    (root / "workspaces/roads/50%.fmw").write_text("#!\n")
    _add_item(root, "workspaces/roads/50%.fmw")
    with pytest.raises(ContentError, match=r"repositories\[Roads\]: item name '50%\.fmw'"):
        load_content_dir(root)


def test_non_ascii_and_spaces_are_fine_names(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "c")
    (root / "workspaces/roads/my roads é.fmw").write_text("#!\n")
    _add_item(root, "workspaces/roads/my roads é.fmw")
    names = [i.item_name for i in load_content_dir(root).manifest.repositories[0].items]
    assert "my roads é.fmw" in names


def test_repository_names_differing_only_in_case_are_refused(tmp_path: Path) -> None:
    root = broken(tmp_path, "- name: Parcels\n", "- name: roads\n")
    with pytest.raises(ContentError) as caught:
        load_content_dir(root)
    assert ("repositories: 'Roads' (repositories.0) and 'roads' (repositories.1) differ only in "
            "case") in str(caught.value)


# --- every problem at once, none of them a traceback ------------------------------------------------
def test_a_300_character_file_name_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "c")
    _add_item(root, "workspaces/" + "x" * 300 + ".fmw")
    with pytest.raises(ContentError) as caught:
        load_content_dir(root)
    assert "repositories[Roads]:" in str(caught.value) and "too long" in str(caught.value)


def test_a_directory_named_as_a_file_is_said_to_be_a_directory(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "c")
    _add_item(root, "workspaces/roads")
    with pytest.raises(ContentError, match=r"'workspaces/roads' is a directory, not a file"):
        load_content_dir(root)


@pytest.mark.parametrize("target", ["../../etc", "/ok/../../etc", "a/./b"])
def test_a_resource_target_with_dot_segments_is_refused(tmp_path: Path, target: str) -> None:
    root = broken(tmp_path, "target: /reference", f"target: '{target}'")
    with pytest.raises(ContentError,
                       match=r"resources\.0\.target \(FME_SHAREDRESOURCE_DATA\): .*'\.' or '\.\.'"):
        load_content_dir(root)


def test_schema_references_files_and_owners_are_reported_together(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "c")
    manifest = root / "fmeaa-content.yaml"
    text = manifest.read_text()
    text = text.replace("services: [fmedatastreaming]", "services: [fmestreaming]")  # schema
    text = text.replace("topics: [PARCELS_LOADED]\n    properties:\n      recipient",
                        "topics: [NOPE]\n    properties:\n      recipient")  # cross reference
    text = text.replace("policy: one\n  - name: hourly", "policy: one\n    owner: fme-9\n"
                        "  - name: hourly")  # owner unknown to the inventory
    text = text.replace("target: /reference", "target: ../../etc")  # schema
    manifest.write_text(text)
    (root / "workspaces/parcels/load_parcels.fmw").unlink()  # file
    _add_item(root, "workspaces/parcels")  # a directory
    with pytest.raises(ContentError) as caught:
        load_content_dir(root, nodes=["fme-1", "fme-2"])
    text = str(caught.value)
    for expected in ("repositories.0.items.3.services", "resources.0.target",
                     "subscriptions[gis-team-email]: topic 'NOPE' is not in topics",
                     "file 'workspaces/parcels/load_parcels.fmw' does not exist",
                     "'workspaces/parcels' is a directory",
                     "schedules[Parcels/nightly-parcels]: owner 'fme-9' is not a node"):
        assert expected in text, text
    assert "6 problem(s)" in text


# --- every message word for word, and what a valid manifest becomes -------------------------------
EVERY_PROBLEM = """\
version: 1
repositories:
  - name: R
    items:
      - {file: w.fmw, services: [fmejobsubmitter, fmejobsubmitter, fmedatadownload]}
      - {file: missing.fmw}
      - {file: folder}
      - {file: "50%.fmw"}
      - {file: w.fmw, name: W.FMW}
      - {file: w.fmw, services: [bogus]}
  - name: r
  - name: R2
    bogus: 1
topics:
  - {name: T}
  - {name: T}
  - {name: t}
subscriptions:
  - {name: s, subscriberName: email, topics: [T, NOPE]}
  - {name: s, subscriberName: email}
publications:
  - {name: p, publisherName: email, topics: [GONE]}
  - {name: p, publisherName: email}
schedules:
  - {name: a, category: C, repository: R, workspace: nope.fmw, cron: "0 0 2 * * ?", owner: fme-9}
  - {name: a, category: C, repository: R, workspace: w.fmw, cron: "0 0 2 * * ?"}
  - {name: b, category: C, repository: R, workspace: w.fmw, cron: "* * *"}
  - {name: c, category: C, repository: R, workspace: w.fmw, cron: "0 0 2 1 * MON"}
  - {name: d, category: C, repository: R, workspace: w.fmw, cron: "0 0 2 * * ? 2030 x"}
  - {name: e, category: C, repository: R, workspace: w.fmw, cron: "0 0 2 * * ? *", owner: fme-1}
resources:
  - {source: data, target: 'a\\b'}
  - {connection: FME_SHAREDRESOURCE_TEMP, source: data}
  - {source: nothere}
  - {source: w.fmw}
  - {source: data, target: /ok}
connections:
  - {name: c, category: database, type: PostgreSQL,
     parameters: {PASSWORD: plain, API_KEY: "", TOKEN: {secret: "env:T"}, HOST: h}}
  - {name: c, category: database, type: PostgreSQL}
  - {name: c, category: database, type: MySQL}
deploymentParameters:
  - {name: dp, type: dropdown}
  - {name: dp2, value: x, choiceSettings: {choiceSet: dbConnections, family: PostgreSQL}}
  - {name: dp3, type: dropdown, choiceSettings: {choiceSet: dbConnections, services: [x]}}
  - {name: dp4, type: dropdown, choiceSettings: {choiceSet: webConnections, family: y}}
  - {name: dp5}
  - {name: dp5}
projects:
  - {file: p.fsproject, name: P}
  - {file: w.fmw, name: P}
"""
QUARTZ = ("is not a Quartz cron expression: FME schedules need 6 or 7 fields (sec min hour "
          "day-of-month month day-of-week [year]), e.g. '0 0 2 * * ?'")
CASE = "differ only in case; FME may treat them as one name (UNCONFIRMED): rename one"
DROPDOWN = "a dropdown needs choiceSettings, and only a dropdown has them"
EVERY_MESSAGE = [
    "repositories.0.items.5.services (R / w.fmw): unknown service(s) ['bogus']; known: fmedatadownload, "
    "fmedatastreaming, fmejobsubmitter, fmekmllink, fmenotification",
    "repositories.2.bogus (R2): unknown key (check the spelling; see examples/content/fmeaa-content.yaml)",
    f"schedules.2.cron (b): '* * *' {QUARTZ}",
    "schedules.3.cron (c): '0 0 2 1 * MON': Quartz needs '?' in day-of-month or day-of-week",
    f"schedules.4.cron (d): '0 0 2 * * ? 2030 x' {QUARTZ}",
    "resources.0.target: 'a\\\\b': a folder inside the connection, written with '/' and without "
    "'.' or '..' segments (e.g. /reference)",
    "resources.1.connection (FME_SHAREDRESOURCE_TEMP): FME_SHAREDRESOURCE_TEMP holds one node's "
    "own files (logs, temp, backups) and is never synced",
    "connections.0.parameters (c): parameter(s) ['PASSWORD'] hold credentials: give them as secret "
    "references ({secret: 'env:NAME'} or {secret: 'aws-sm:ID#key'}), never as values",
    f"deploymentParameters.0 (dp): {DROPDOWN}",
    f"deploymentParameters.1 (dp2): {DROPDOWN}",
    "deploymentParameters.2.choiceSettings (dp3): services/excludedServices are for webConnections only",
    "deploymentParameters.3.choiceSettings (dp4): family is for dbConnections only",
    f"repositories: 'R' (repositories.0) and 'r' (repositories.1) {CASE}",
    "repositories[R]: item name '50%.fmw' (from file '50%.fmw') contains '%': rename it. FME's "
    "naming rules are UNCONFIRMED, so fmeaa refuses what does not travel safely as one URL path "
    "segment (/, \\, %, #, ? and control characters); or give the item a `name:`",
    f"repositories[R].items: 'w.fmw' (repositories[R].items.0) and 'W.FMW' "
    f"(repositories[R].items.4) {CASE}",
    "topics: 'T' appears twice",
    "subscriptions: 's' appears twice",
    "publications: 'p' appears twice",
    "schedules: 'C/a' appears twice",
    "connections: 'c' appears twice",
    "deploymentParameters: 'dp5' appears twice",
    "projects: 'P' appears twice",
    "subscriptions[s]: topic 'NOPE' is not in topics",
    "publications[p]: topic 'GONE' is not in topics",
    "schedules[C/a]: workspace R/nope.fmw is not in repositories",
    "repositories[R]: file 'missing.fmw' does not exist",
    "repositories[R]: 'folder' is a directory, not a file: name one file per item (a folder of "
    "files belongs under resources:)",
    "projects[P]: file 'p.fsproject' does not exist",
    "resources[nothere]: folder 'nothere' does not exist",
    "resources[w.fmw]: 'w.fmw' is a file, not a directory",
    "schedules[C/a]: owner 'fme-9' is not a node of the inventory (fme-1, fme-2)",
]


def _tree(root: Path, manifest: str) -> Path:
    for folder in ("folder", "data/sub", "data/.git"):
        (root / folder).mkdir(parents=True)
    for name, text in (("w.fmw", "w"), ("50%.fmw", "p"), ("data/b.csv", "b"), ("data/.hidden", "h"),
                       ("data/sub/a.csv", "a"), ("data/.git/config", "g")):
        (root / name).write_text(text)
    (root / "fmeaa-content.yaml").write_text(manifest)
    return root


def test_every_problem_word_for_word_in_the_order_found(tmp_path: Path) -> None:
    """Schema, then names and references, then files, then owners: all in one error, each line
    naming where it is and what to do."""
    root = _tree(tmp_path / "c", EVERY_PROBLEM)
    with pytest.raises(ContentError) as caught:
        load_content_dir(root, nodes=["fme-2", "fme-1"])
    first, *lines = str(caught.value).split("\n")
    assert first == f"{root / 'fmeaa-content.yaml'}: {len(EVERY_MESSAGE)} problem(s):"
    assert lines == [f"  - {m}" for m in EVERY_MESSAGE]
    with pytest.raises(ContentError) as caught:
        load_content_dir(root)  # no inventory given: owners are not checked
    assert "owner" not in str(caught.value)


VALID = """\
repositories:
  - name: R
    items:
      - {file: w.fmw, services: [fmejobsubmitter, fmejobsubmitter, fmedatadownload]}
      - {file: "50%.fmw", name: fifty.fmw, services: []}
      - {file: sub/x.fmw}
schedules:
  - {name: e, category: C, repository: R, workspace: x.fmw, cron: "0 0 2 * * ? *", owner: fme-1}
resources:
  - {source: data, target: /okX/}
  - {connection: FME_SHAREDRESOURCE_ENGINE, source: data}
projects:
  - {file: w.fmw, name: P}
connections:
  - {name: c, category: database, type: PostgreSQL, parameters: {API_KEY: "", HOST: h, PORT: 5432}}
"""


def test_a_valid_manifest_and_the_files_it_names(tmp_path: Path) -> None:
    root = _tree(tmp_path / "content ", VALID)  # a folder name ending in a space is fine
    (root / "sub").mkdir()
    (root / "sub/x.fmw").write_text("x")
    content = load_content_dir(root, nodes=["fme-1"])
    m = content.manifest
    items = m.repositories[0].items
    assert [(i.item_name, i.services) for i in items] == [
        ("w.fmw", ["fmedatadownload", "fmejobsubmitter"]), ("fifty.fmw", []),
        ("x.fmw", ["fmejobsubmitter"])]
    assert m.schedules[0].key == "C/e" and m.schedules[0].policy.value == "one"
    assert m.connections is not None and m.connections[0].parameters["PORT"] == 5432
    assert m.topics == [] and m.deployment_parameters is None
    # Items, then project packages, then each resource folder's files (hidden ones skipped).
    assert content.files() == [root / "w.fmw", root / "50%.fmw", root / "sub/x.fmw", root / "w.fmw",
                               root / "data/b.csv", root / "data/sub/a.csv",
                               root / "data/b.csv", root / "data/sub/a.csv"]
    assert content.resource_files(m.resources[0]) == [("/okX/b.csv", root / "data/b.csv"),
                                                      ("/okX/sub/a.csv", root / "data/sub/a.csv")]
    assert [p for p, _ in content.resource_files(m.resources[1])] == ["/b.csv", "/sub/a.csv"]
    assert content.project_path(m.projects[0]) == root / "w.fmw"  # type: ignore[index]


def test_the_manifest_itself_must_be_a_readable_mapping_inside(tmp_path: Path) -> None:
    with pytest.raises(ContentError) as caught:
        load_content_dir(tmp_path / "nope")
    source_is = ("a content source is a directory holding fmeaa-content.yaml (`fmeaa export "
                 "--from NODE DIR` writes one from a node), node:NAME or url:https://SERVER")
    assert str(caught.value) == f"{tmp_path / 'nope'}: no such directory; {source_is}"
    (tmp_path / "file").write_text("")
    with pytest.raises(ContentError) as caught:
        load_content_dir(tmp_path / "file")
    assert str(caught.value) == f"{tmp_path / 'file'}: not a directory; {source_is}"
    with pytest.raises(ContentError) as caught:
        load_content_dir(tmp_path)
    assert str(caught.value) == (f"{tmp_path}: no fmeaa-content.yaml (run `fmeaa export` to "
                                 "create one from a node)")
    manifest = tmp_path / "fmeaa-content.yaml"
    for text, message in (("- a\n- b\n", "the top level must be a mapping of sections"),
                          ("a: [1\n", "malformed YAML at line 2, column 1: did not find "
                                      "expected ',' or ']'")):
        manifest.write_text(text)
        with pytest.raises(ContentError) as caught:
            load_content_dir(tmp_path)
        assert str(caught.value) == f"{manifest}: {message}"
    manifest.write_bytes(b"a: \xff\n")
    with pytest.raises(ContentError, match=r"fmeaa-content\.yaml: unreadable: "):
        load_content_dir(tmp_path)
    manifest.write_text("")  # an empty manifest: nothing to hold
    assert load_content_dir(tmp_path).manifest.repositories == []
    manifest.unlink()
    (tmp_path.parent / "elsewhere.yaml").write_text("version: 1\n")
    manifest.symlink_to(tmp_path.parent / "elsewhere.yaml")
    with pytest.raises(ContentError) as caught:
        load_content_dir(tmp_path)
    assert str(caught.value) == (
        f"{manifest}: 'fmeaa-content.yaml' is a symbolic link to {tmp_path.parent / 'elsewhere.yaml'}"
        ", outside the content directory: copy the file into the content directory instead of "
        "linking to it (nothing outside it is ever read)")


def test_a_link_inside_a_linked_folder_that_leads_out_is_refused(tmp_path: Path) -> None:
    """A path whose last part is no link but whose folder is: "leads through a symbolic link"."""
    root = _tree(tmp_path / "c", VALID.replace("file: sub/x.fmw", "file: out/x.fmw"))
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/x.fmw").write_text("x")
    (root / "out").symlink_to(tmp_path / "outside")
    with pytest.raises(ContentError) as caught:
        load_content_dir(root)
    assert (f"repositories[R]: 'out/x.fmw' leads through a symbolic link to "
            f"{tmp_path / 'outside/x.fmw'}, outside the content directory: copy the file into") \
        in str(caught.value)


def test_a_folder_linking_back_to_itself_is_walked_once(tmp_path: Path) -> None:
    root = _tree(tmp_path / "c", VALID)
    (root / "sub").mkdir()
    (root / "sub/x.fmw").write_text("x")
    (root / "data/sub/loop").symlink_to(root / "data")
    content = load_content_dir(root)
    assert [p for p, _ in content.resource_files(content.manifest.resources[1])] == \
        ["/b.csv", "/sub/a.csv"]


UNSAFE = (": rename it. FME's naming rules are UNCONFIRMED, so fmeaa refuses what does not travel "
          "safely as one URL path segment (/, \\, %, #, ? and control characters)")
DOTS = "cannot be '.' or '..' (in a URL path they name a folder)"


@pytest.mark.parametrize(("name", "message"), [
    ("", "is empty"), ("x" * 201, "is 201 characters long (at most 200)"), ("x" * 200, None),
    (".", DOTS), ("..", DOTS), ("a\x7fb", "contains '\\x7f'" + UNSAFE),
    ("a#b%c", "contains '#', '%'" + UNSAFE), ("a\x80b é.fmw", None),
])
def test_each_name_rule_word_for_word(name: str, message: str | None) -> None:
    assert name_problem(name) == message


def test_broken_sections_and_entries_leave_the_rest_checked(tmp_path: Path) -> None:
    """A section that is no list, an entry that is no mapping, a repository without a name: each
    reported once, and every other section and item still checked (no traceback)."""
    root = _tree(tmp_path / "c", """topics: 5
repositories:
  - 7
  - {items: [{file: w.fmw}]}
  - {name: R, items: [{file: w.fmw, name: renamed.fmw}, 3]}
subscriptions:
  - 4
  - {name: s, subscriberName: email, topics: [NOPE]}
schedules:
  - {name: a, category: C, repository: R, workspace: renamed.fmw, cron: "0 0 2 * * ?"}
  - {name: b, category: C, repository: R, workspace: gone.fmw, cron: "0 0 2 * * ?"}
""")
    with pytest.raises(ContentError) as caught:
        load_content_dir(root)
    lines = str(caught.value).split("\n")[1:]
    assert "  - schedules[C/b]: workspace R/gone.fmw is not in repositories" in lines
    assert "  - subscriptions[s]: topic 'NOPE' is not in topics" in lines
    assert not any("renamed.fmw" in line for line in lines)  # the item is found by its name
    assert [line.split(":")[0] for line in lines] == [
        "  - repositories.0", "  - repositories.1.name", "  - repositories.2.items.1 (R)", "  - topics",
        "  - subscriptions.0", "  - subscriptions[s]", "  - schedules[C/b]"]


def test_resource_files_refuse_a_link_made_after_validation(tmp_path: Path) -> None:
    root = _tree(tmp_path / "c", VALID)
    (root / "sub").mkdir()
    (root / "sub/x.fmw").write_text("x")
    content = load_content_dir(root)
    (tmp_path / "out").mkdir()
    (tmp_path / "out/f.csv").write_text("f")
    (root / "data/a-dir").symlink_to(tmp_path / "out")
    (root / "data/b-file.csv").symlink_to(tmp_path / "out/f.csv")
    with pytest.raises(ContentError) as caught:
        content.resource_files(content.manifest.resources[0])
    assert str(caught.value).split("\n") == [
        f"resources[data]: 'data/a-dir' is a symbolic link to {tmp_path / 'out'}, outside the "
        "content directory: copy the files into the content directory instead of linking to it "
        "(nothing outside it is ever read)",
        f"resources[data]: 'data/b-file.csv' is a symbolic link to {tmp_path / 'out/f.csv'}, "
        "outside the content directory: copy the file into the content directory instead of "
        "linking to it (nothing outside it is ever read)"]


def test_a_resource_folder_linking_out_says_copy_the_files(tmp_path: Path) -> None:
    root = _tree(tmp_path / "c", VALID.replace("source: data, target: /okX/", "source: linked"))
    (root / "sub").mkdir()
    (root / "sub/x.fmw").write_text("x")
    (tmp_path / "elsewhere").mkdir()
    (root / "linked").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ContentError) as caught:
        load_content_dir(root)
    assert (f"resources[linked]: 'linked' is a symbolic link to {tmp_path / 'elsewhere'}, outside "
            "the content directory: copy the files into") in str(caught.value)


def test_an_unreadable_resource_folder_is_a_problem(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path / "c", VALID)
    (root / "sub").mkdir()
    (root / "sub/x.fmw").write_text("x")
    real_scandir = os.scandir

    def scandir(path: object) -> object:
        if str(path).endswith("/data/sub"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)  # type: ignore[arg-type]
    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(ContentError) as caught:
        load_content_dir(root)
    assert "  - resources[data]: 'data/sub' cannot be read (Permission denied)" in \
        str(caught.value).split("\n")


def test_a_nameless_entry_is_reported_not_a_traceback(tmp_path: Path) -> None:
    root = _tree(tmp_path / "c", "topics:\n  - {description: no name}\n  - {name: 5}\n")
    with pytest.raises(ContentError) as caught:
        load_content_dir(root)
    assert str(caught.value).split("\n")[1:] == [
        "  - topics.0.name: Field required", "  - topics.1.name: Input should be a valid string"]


def test_an_error_location_names_the_entries_it_passes_through() -> None:
    """`_entry_names` follows a validation error's location through the raw manifest: each list
    entry's name (or file, or connection) on the way, and whatever it found before a location
    the manifest does not hold."""
    raw = {"repositories": [{"name": "Roads", "items": [{"file": "a.fmw"}, 3]}],
           "resources": [{"connection": "FME_SHAREDRESOURCE_DATA"}], "topics": 5}
    assert _entry_names(raw, ("repositories", 0, "items", 0, "services")) == ["Roads", "a.fmw"]
    assert _entry_names(raw, ("repositories", 0, "items", 1)) == ["Roads"]
    assert _entry_names(raw, ("resources", 0, "target")) == ["FME_SHAREDRESOURCE_DATA"]
    assert _entry_names(raw, ("repositories", 0, "missing", "deeper")) == ["Roads"]
    assert _entry_names(raw, ("repositories", 1)) == []  # past the end
    assert _entry_names(raw, ("topics", 0)) == []  # not a list
    assert _entry_names(None, ("topics", 0)) == []
