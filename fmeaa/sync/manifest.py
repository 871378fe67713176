"""Typed model of a content directory: the manifest `fmeaa-content.yaml` and the files it names.

A content directory is the version-controlled source of truth for what every FME node must
hold. The manifest is validated completely (schema, names, cross references, files, schedule
owners) before any node is contacted, and every problem is reported at once with the file and
key it is in: a schema error does not hide a missing file.

Nothing is read outside the content directory: a `..` path, and a symbolic link whose target
resolves outside it (a file, a folder, a resource folder itself), are refused.

Secrets never appear in a manifest: a property value may be a reference
`{secret: "env:NAME"}` or `{secret: "aws-sm:SECRET_ID#key"}`, resolved at sync time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

MANIFEST_NAME = "fmeaa-content.yaml"
# Services an FME Server item can be registered with (Safe's REST API v3 docs; fmeflow-cli
# `cmd/workspaces.go`).
KNOWN_SERVICES = ("fmedatadownload", "fmedatastreaming", "fmejobsubmitter", "fmekmllink",
                  "fmenotification")
# Per-node folders that must never be synced: job logs, backups and temp files belong to one node.
NODE_LOCAL_CONNECTIONS = ("FME_SHAREDRESOURCE_LOG", "FME_SHAREDRESOURCE_TEMP",
                          "FME_SHAREDRESOURCE_BACKUP")
MAX_NAME = 200
# Characters refused in names that travel as one URL path segment (`/repositories/{name}`…) and,
# for repositories and items, become a file or folder on the node's System Share. FME's own
# naming rules are not published (UNCONFIRMED); these are the characters that do not survive
# that trip in every client: '/' and '\\' split the segment (servlet containers refuse them
# encoded), '%', '#' and '?' break any client that puts names into URLs unencoded, as Safe's
# fmeflow-cli does (`cmd/repositories_delete.go`, `cmd/workspaces.go`).
URL_UNSAFE = "/\\%#?"
_SECRET_REF = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|aws-sm:[^#\s]+(#[^#\s]+)?)$")
# Quartz cron (FME schedules): sec min hour day-of-month month day-of-week [year].
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?/,#LW-]+$")


class ContentError(ValueError):
    """The content directory is invalid; the message lists every problem with where it is."""


def name_problem(name: str) -> str | None:
    """Why `name` cannot be an FME name fmeaa sends in a URL path, or None when it can."""
    if not name:
        return "is empty"
    if len(name) > MAX_NAME:
        return f"is {len(name)} characters long (at most {MAX_NAME})"
    if name in (".", ".."):
        return "cannot be '.' or '..' (in a URL path they name a folder)"
    bad = sorted({c for c in name if c in URL_UNSAFE or ord(c) < 32 or ord(c) == 127})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        return (f"contains {shown}: rename it. FME's naming rules are UNCONFIRMED, so fmeaa "
                f"refuses what does not travel safely as one URL path segment "
                f"({', '.join(URL_UNSAFE)} and control characters)")
    return None


def _valid_name(value: str) -> str:
    problem = name_problem(value)
    if problem:
        raise ValueError(f"{value!r} {problem}")
    return value


Name = Annotated[str, AfterValidator(_valid_name)]


class _Model(BaseModel):
    # Validators are built when first used: start-up time (README, "Speed").
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid",
                              frozen=True, defer_build=True)


class SecretRef(_Model):
    """A reference to a secret held outside the repository, never the secret itself."""

    secret: str

    @field_validator("secret")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not _SECRET_REF.match(value):
            raise ValueError("secret references look like 'env:NAME' or 'aws-sm:SECRET_ID[#key]'")
        return value


PropertyValue = str | int | float | bool | SecretRef


class Item(_Model):
    """A file published to a repository (workspace, custom transformer, …) and its services."""

    file: str = Field(description="Path of the file, relative to the content directory.")
    name: Name | None = Field(default=None,
                              description="Item name on the server; default: the file's name.")
    services: list[str] = Field(default_factory=lambda: ["fmejobsubmitter"])

    @property
    def item_name(self) -> str:
        return self.name or PurePosixPath(self.file).name

    @field_validator("services")
    @classmethod
    def _known_services(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(KNOWN_SERVICES))
        if unknown:
            raise ValueError(f"unknown service(s) {unknown}; known: {', '.join(KNOWN_SERVICES)}")
        return sorted(set(value))


class Repository(_Model):
    name: Name
    description: str = ""
    items: list[Item] = Field(default_factory=list)


class Topic(_Model):
    name: Name
    description: str = ""


class _Notifier(_Model):
    name: Name
    description: str = ""
    topics: list[str] = Field(default_factory=list)
    properties: dict[str, PropertyValue] = Field(default_factory=dict)


class Subscription(_Notifier):
    subscriber_name: str = Field(description="Protocol, e.g. email, SNS, HTTP.")


class Publication(_Notifier):
    publisher_name: str = Field(description="Protocol, e.g. email, SNS, HTTP.")


# Parameter names that hold credentials: in a manifest they must be secret references, and
# nodes never return their values (fmeflow-cli's connection samples omit the password).
SECRET_PARAMETER = re.compile(r"pass|secret|token|credential|priv|key", re.IGNORECASE)


class Connection(_Model):
    """An FME Flow (REST v4) connection: database, web service… Credentials only as references."""

    name: Name
    category: str = Field(description="e.g. database, webservice, oauthV2")
    type: str = Field(description="e.g. PostgreSQL")
    parameters: dict[str, PropertyValue] = Field(default_factory=dict)

    @field_validator("parameters")
    @classmethod
    def _secrets_by_reference(cls, value: dict[str, PropertyValue]) -> dict[str, PropertyValue]:
        plain = sorted(k for k, v in value.items()
                       if SECRET_PARAMETER.search(k) and not isinstance(v, SecretRef) and v != "")
        if plain:
            raise ValueError(f"parameter(s) {plain} hold credentials: give them as secret "
                             "references ({secret: 'env:NAME'} or {secret: 'aws-sm:ID#key'}), "
                             "never as values")
        return value


class ChoiceSettings(_Model):
    """Where a dropdown deployment parameter takes its choices (fmeflow-cli
    deploymentparameters_create.go): database connections of one `family`, or web connections
    of some `services`."""

    choice_set: Literal["dbConnections", "webConnections"]
    family: str | None = Field(default=None, description="dbConnections: e.g. PostgreSQL")
    services: list[str] | None = Field(default=None, description="webConnections: e.g. Slack")
    excluded_services: list[str] | None = None

    @model_validator(mode="after")
    def _fits_the_choice_set(self) -> ChoiceSettings:
        if self.choice_set == "dbConnections" and (self.services or self.excluded_services):
            raise ValueError("services/excludedServices are for webConnections only")
        if self.choice_set == "webConnections" and self.family:
            raise ValueError("family is for dbConnections only")
        return self


class DeploymentParameter(_Model):
    """An FME Flow (REST V4) deployment parameter: a named value workspaces read, the same on
    every node. Its value is returned by the node, so it is never a secret."""

    name: Name
    type: Literal["text", "dropdown"] = "text"
    value: str = ""
    choice_settings: ChoiceSettings | None = None

    @model_validator(mode="after")
    def _dropdown_has_choices(self) -> DeploymentParameter:
        if (self.type == "dropdown") != (self.choice_settings is not None):
            raise ValueError("a dropdown needs choiceSettings, and only a dropdown has them")
        return self


class ProjectPackage(_Model):
    """An FME Flow project package (.fsproject, exported from the authoring server), imported
    into every node with REST V4 project import: the confirmed V4 way to carry workspaces,
    schedules, automations and apps together."""

    file: str = Field(description="Path of the .fsproject, relative to the content directory.")
    name: Name = Field(description="The project's name on FME Flow (as exported).")


class SchedulePolicy(StrEnum):
    ALL = "all"  # enabled on every node: fires N times (use only for node-local work)
    ONE = "one"  # enabled on one owner node, present but disabled on the others


class Schedule(_Model):
    name: Name
    category: Name
    repository: str
    workspace: str
    cron: str
    description: str = ""
    enabled: bool = True
    policy: SchedulePolicy = SchedulePolicy.ONE
    owner: str | None = Field(default=None, description="Node that runs a 'one' schedule; "
                              "default: the first node of the inventory.")
    request: dict[str, Any] = Field(default_factory=dict)

    @field_validator("cron")
    @classmethod
    def _quartz(cls, value: str) -> str:
        fields = value.split()
        if len(fields) not in (6, 7) or not all(_CRON_FIELD.match(f) for f in fields):
            raise ValueError(f"{value!r} is not a Quartz cron expression: FME schedules need 6 or 7 "
                             "fields (sec min hour day-of-month month day-of-week [year]), "
                             "e.g. '0 0 2 * * ?'")
        if fields[3] != "?" and fields[5] != "?":
            raise ValueError(f"{value!r}: Quartz needs '?' in day-of-month or day-of-week")
        return value

    @property
    def key(self) -> str:
        return f"{self.category}/{self.name}"


class ResourceFolder(_Model):
    """A directory of the content dir mirrored into a resource connection of every node."""

    connection: str = "FME_SHAREDRESOURCE_DATA"
    source: str = Field(description="Directory relative to the content directory.")
    target: str = Field(default="/", description="Folder inside the connection.")

    @field_validator("target")
    @classmethod
    def _plain_folder(cls, value: str) -> str:
        if "\\" in value or any(p in (".", "..") for p in value.split("/")):
            raise ValueError(f"{value!r}: a folder inside the connection, written with '/' and "
                             "without '.' or '..' segments (e.g. /reference)")
        return value

    @field_validator("connection")
    @classmethod
    def _shared_only(cls, value: str) -> str:
        if value in NODE_LOCAL_CONNECTIONS:
            raise ValueError(f"{value} holds one node's own files (logs, temp, backups) and is "
                             "never synced")
        return value


# Entry kinds as `ignore:` names them (fmeaa.sync.snapshot.Kind's values; a test keeps them equal).
ENTRY_KINDS = ("repository", "topic", "connection", "deployment-parameter", "item", "resource",
               "subscription", "publication", "schedule", "project")


class IgnoreRule(_Model):
    """Known noise: entries a node rewrites itself (a cache file in a managed resource folder,
    a schedule an app updates…). Matching entries are never updated, deleted or reported
    (`plan`, `sync`, `verify`); one the source lists is still created where it is missing."""

    kind: Literal[ENTRY_KINDS]  # type: ignore[valid-type]
    key: str = Field(description="A glob (fnmatch: *, ?, [..]) over the entry's key: item "
                                 "`REPO/NAME`, resource `CONNECTION:/path`, schedule "
                                 "`CATEGORY/NAME`, others their name.")

    @field_validator("key")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("an empty pattern matches nothing: give a key or a glob such as "
                             "'FME_SHAREDRESOURCE_DATA:/reference/cache/*'")
        return value


class ContentManifest(_Model):
    version: Literal[1] = 1
    repositories: list[Repository] = Field(default_factory=list)
    topics: list[Topic] = Field(default_factory=list)
    subscriptions: list[Subscription] = Field(default_factory=list)
    publications: list[Publication] = Field(default_factory=list)
    schedules: list[Schedule] = Field(default_factory=list)
    resources: list[ResourceFolder] = Field(default_factory=list)
    # None (no `connections:` key): connections are not managed, never pruned. A list, even
    # empty, manages them: `--prune` then deletes connections that are not listed.
    connections: list[Connection] | None = None
    # Same rule: no `deploymentParameters:` key, not managed.
    deployment_parameters: list[DeploymentParameter] | None = None
    # And for projects: no `projects:` key, the nodes' projects are not managed.
    projects: list[ProjectPackage] | None = None
    ignore: list[IgnoreRule] = Field(default_factory=list)


# Each list section and the model of one of its entries: a broken entry is reported and left
# out, and the rest is still checked (cross references, files), so one run lists every problem.
_SECTIONS: dict[str, type[_Model]] = {
    "repositories": Repository, "topics": Topic, "subscriptions": Subscription,
    "publications": Publication, "schedules": Schedule, "resources": ResourceFolder,
    "connections": Connection, "deploymentParameters": DeploymentParameter,
    "projects": ProjectPackage, "ignore": IgnoreRule,
}


def _entry_names(raw: Any, loc: tuple[Any, ...]) -> list[str]:
    """The names of the list entries `loc` passes through (`name`, else `file` or
    `connection`), so an error says which schedule or item, not only its position."""
    names, node = [], raw
    for part in loc:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            label = next((node[k] for k in ("name", "file", "connection")
                          if isinstance(node, dict) and isinstance(node.get(k), str)), None)
            if label:
                names.append(label)
        else:
            break
    return names


def _error_lines(error: ValidationError, raw: Any = None) -> list[str]:
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        names = _entry_names(raw, tuple(item["loc"]))
        if names:
            where += f" ({' / '.join(names)})"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see examples/content/fmeaa-content.yaml)"
        lines.append(f"{where}: {message}")
    return lines


def _salvage(raw: dict[str, Any]) -> ContentManifest:
    """The valid part of a manifest that failed validation: every entry valid on its own (a
    repository keeps its valid items)."""
    kept: dict[str, Any] = {}
    for key, model in _SECTIONS.items():
        entries = raw.get(key)
        if not isinstance(entries, list):
            continue
        valid = []
        for entry in entries:
            if key == "repositories" and isinstance(entry, dict) \
                    and isinstance(entry.get("items"), list):
                items = [i for i in entry["items"] if _validates(Item, i)]
                entry = {**entry, "items": items}
            if _validates(model, entry):
                valid.append(model.model_validate(entry))
        kept[key] = valid
    return ContentManifest.model_construct(**kept)


def _validates(model: type[_Model], value: Any) -> bool:
    try:
        model.model_validate(value)
    except ValidationError:
        return False
    return True


def _parse(raw: dict[str, Any], problems: list[str]) -> ContentManifest:
    try:
        return ContentManifest.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_error_lines(exc, raw))
        return _salvage(raw)


def _raw_names(entries: Any, key: str = "name") -> set[str]:
    """Names in a raw section, valid entries or not: a reference to a broken entry is reported
    once (at the entry), not again as a dangling reference."""
    if not isinstance(entries, list):
        return set()
    return {e[key] for e in entries if isinstance(e, dict) and isinstance(e.get(key), str)}


def _raw_items(raw: dict[str, Any]) -> set[tuple[str, str]]:
    found = set()
    repos = raw.get("repositories")
    for repo in repos if isinstance(repos, list) else []:
        if not isinstance(repo, dict) or not isinstance(repo.get("name"), str):
            continue
        items = repo.get("items")
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict):
                name = item.get("name") or PurePosixPath(str(item.get("file", ""))).name
                found.add((repo["name"], str(name)))
    return found


def _reference_problems(m: ContentManifest, raw: dict[str, Any]) -> list[str]:
    """Names that must be unique, item names taken from file names, and references between
    sections (topics of notifiers, workspaces of schedules)."""
    problems: list[str] = []
    _unique(problems, "repositories", [r.name for r in m.repositories], case_insensitive=True)
    for repo in m.repositories:
        for item in repo.items:
            problem = None if item.name else name_problem(item.item_name)
            if problem:
                problems.append(f"repositories[{repo.name}]: item name {item.item_name!r} (from "
                                f"file {item.file!r}) {problem}; or give the item a `name:`")
        _unique(problems, f"repositories[{repo.name}].items", [i.item_name for i in repo.items],
                case_insensitive=True)
    _unique(problems, "topics", [t.name for t in m.topics])
    _unique(problems, "subscriptions", [s.name for s in m.subscriptions])
    _unique(problems, "publications", [p.name for p in m.publications])
    _unique(problems, "schedules", [s.key for s in m.schedules])
    _unique(problems, "connections", [c.name for c in m.connections or []])
    _unique(problems, "deploymentParameters", [d.name for d in m.deployment_parameters or []])
    _unique(problems, "projects", [p.name for p in m.projects or []])
    topics = _raw_names(raw.get("topics"))
    for kind, notifiers in (("subscriptions", m.subscriptions), ("publications", m.publications)):
        for n in notifiers:
            for missing in sorted(set(n.topics) - topics):
                problems.append(f"{kind}[{n.name}]: topic {missing!r} is not in topics")
    items = _raw_items(raw)
    for s in m.schedules:
        if (s.repository, s.workspace) not in items:
            problems.append(f"schedules[{s.key}]: workspace {s.repository}/{s.workspace} "
                            "is not in repositories")
    return problems


def _unique(problems: list[str], where: str, names: list[str],
            case_insensitive: bool = False) -> None:
    """Duplicates; with `case_insensitive`, also names that differ only in case. Repositories
    and items are folders and files on the System Share: whether FME tells `Roads` from `roads`
    is UNCONFIRMED (its database is PostgreSQL, Windows file systems ignore case), so fmeaa
    refuses both rather than create two that may collide."""
    seen: dict[str, tuple[int, str]] = {}
    for index, name in enumerate(names):
        folded = name.casefold() if case_insensitive else name
        if folded in seen:
            first_index, first = seen[folded]
            if first == name:
                problems.append(f"{where}: {name!r} appears twice")
            else:
                problems.append(f"{where}: {first!r} ({where}.{first_index}) and {name!r} "
                                f"({where}.{index}) differ only in case; FME may treat them as "
                                "one name (UNCONFIRMED): rename one")
        else:
            seen[folded] = (index, name)


def _owner_problems(m: ContentManifest, nodes: Sequence[str]) -> list[str]:
    names = set(nodes)
    return [f"schedules[{s.key}]: owner {s.owner!r} is not a node of the inventory "
            f"({', '.join(sorted(names))})"
            for s in m.schedules if s.owner and s.owner not in names]


def _inside(root: Path | str, relative: str) -> Path | None:
    """`root/relative`, or None when `..` or an absolute path leads out of `root` (lexically)."""
    base = os.path.normpath(os.path.abspath(root))
    candidate = os.path.normpath(os.path.join(base, relative))
    return Path(candidate) if _within(base, candidate) else None


def _within(base: str, path: str) -> bool:
    """`path` is `base` or below it. A sibling that merely starts with the same letters
    (`content-evil` next to `content`) is not."""
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)


def _link_problem(real_root: str, path: Path, shown: str, what: str) -> str | None:
    """A problem when `path` resolves (through symbolic links) outside the content directory."""
    target = os.path.realpath(path)
    if _within(real_root, target):
        return None
    how = "is a symbolic link to" if path.is_symlink() else "leads through a symbolic link to"
    return (f"{shown!r} {how} {target}, outside the content directory: copy the {what} into the "
            "content directory instead of linking to it (nothing outside it is ever read)")


class ContentDirectory:
    """A validated content directory: the manifest plus the resolved paths of its files."""

    def __init__(self, root: Path, manifest: ContentManifest) -> None:
        self.root = root
        self.manifest = manifest
        self._real_root = os.path.realpath(root)

    def item_path(self, item: Item) -> Path:
        return Path(self.item_file(item))

    def item_file(self, item: Item) -> str:
        """`item_path` as text (a sync holds one per workspace: a Path costs four times more)."""
        return os.path.normpath(os.path.join(self.root, item.file))

    def project_path(self, project: ProjectPackage) -> Path:
        return Path(os.path.normpath(os.path.join(self.root, project.file)))

    def files(self) -> list[Path]:
        """Every local file the manifest names: items, project packages, then resource
        folders' files."""
        m = self.manifest
        found = [self.item_path(i) for r in m.repositories for i in r.items]
        found += [self.project_path(p) for p in m.projects or []]
        return found + [local for folder in m.resources for _, local in self.resource_files(folder)]

    def resource_files(self, folder: ResourceFolder) -> list[tuple[str, Path]]:
        """(path inside the connection, local file) for every file below the folder, sorted.
        Hidden files (.git, editor swap files) are skipped; symbolic links are followed while
        they stay inside the content directory (refused otherwise, even after validation)."""
        found, problems = self._walk(folder)
        if problems:
            raise ContentError("\n".join(problems))
        return found

    def _walk(self, folder: ResourceFolder) -> tuple[list[tuple[str, Path]], list[str]]:
        base = Path(os.path.normpath(os.path.join(self.root, folder.source)))
        target = PurePosixPath("/" + folder.target.strip("/"))
        where = f"resources[{folder.source}]"
        found: list[tuple[tuple[str, ...], Path]] = []
        problems: list[str] = []
        visited: set[str] = set()

        def visit(directory: Path, parts: tuple[str, ...]) -> None:
            real = os.path.realpath(directory)
            if real in visited:  # a link back to a folder already walked: no endless loop
                return
            visited.add(real)
            try:
                entries = sorted(os.scandir(directory), key=lambda e: e.name)
            except OSError as exc:
                problems.append(f"{where}: {self._shown(directory)!r} cannot be read "
                                f"({exc.strerror})")
                return
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                path = Path(entry.path)
                if entry.is_symlink():
                    problem = _link_problem(self._real_root, path, self._shown(path),
                                            "files" if entry.is_dir() else "file")
                    if problem:
                        problems.append(f"{where}: {problem}")
                        continue
                if entry.is_dir():
                    visit(path, (*parts, entry.name))
                elif entry.is_file():
                    found.append(((*parts, entry.name), path))

        visit(base, ())
        found.sort(key=lambda f: f[0])
        return [(str(target.joinpath(*rel)), path) for rel, path in found], problems

    def _shown(self, path: Path) -> str:
        return os.path.relpath(path, self.root)

    def _local_problem(self, relative: str, want_dir: bool) -> str | None:
        """Why `relative` is not a usable file (or folder) of the content directory."""
        path = _inside(self.root, relative)
        if path is None:
            return f"{relative!r} is outside the content directory"
        problem = _link_problem(self._real_root, path, relative, "files" if want_dir else "file")
        if problem:
            return problem
        try:
            is_dir = path.is_dir()
            exists = is_dir or path.exists()
        except OSError as exc:  # e.g. a name longer than the file system allows
            return f"{relative!r} cannot be read: {exc.strerror}"
        if not exists:
            return f"{'folder' if want_dir else 'file'} {relative!r} does not exist"
        if is_dir and not want_dir:
            return (f"{relative!r} is a directory, not a file: name one file per item (a folder "
                    "of files belongs under resources:)")
        if not is_dir and want_dir:
            return f"{relative!r} is a file, not a directory"
        return None

    def problems(self) -> list[str]:
        """Every file problem: items and resource folders missing, of the wrong type, or
        leaving the content directory (by `..` or by a symbolic link)."""
        found = []
        for repo in self.manifest.repositories:
            for item in repo.items:
                problem = self._local_problem(item.file, want_dir=False)
                if problem:
                    found.append(f"repositories[{repo.name}]: {problem}")
        for project in self.manifest.projects or []:
            problem = self._local_problem(project.file, want_dir=False)
            if problem:
                found.append(f"projects[{project.name}]: {problem}")
        for folder in self.manifest.resources:
            problem = self._local_problem(folder.source, want_dir=True)
            if problem:
                found.append(f"resources[{folder.source}]: {problem}")
            else:
                found.extend(self._walk(folder)[1])
        return found


def load_content_dir(root: Path, nodes: Iterable[str] | None = None) -> ContentDirectory:
    """Read and check a content directory; raises ContentError listing every problem. With
    `nodes` (the inventory's node names), schedule owners are checked against them too."""
    manifest_path = root / MANIFEST_NAME
    if not root.is_dir():
        what = "not a directory" if root.exists() else "no such directory"
        raise ContentError(f"{root}: {what}; a content source is a directory holding "
                           f"{MANIFEST_NAME} (`fmeaa export --from NODE DIR` writes one from a "
                           "node), node:NAME or url:https://SERVER")
    if not manifest_path.is_file():
        raise ContentError(f"{root}: no {MANIFEST_NAME} (run `fmeaa export` to create one "
                           "from a node)")
    leaving = _link_problem(os.path.realpath(root), manifest_path, MANIFEST_NAME, "file")
    if leaving:
        raise ContentError(f"{manifest_path}: {leaving}")
    try:
        # libyaml's loader when PyYAML has it: a 1,000-item manifest parses ~10x faster.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        raw = yaml.load(manifest_path.read_text(encoding="utf-8"), Loader=loader) or {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise ContentError(f"{manifest_path}: malformed YAML at {where}: {exc.problem}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ContentError(f"{manifest_path}: unreadable: {exc}") from None
    if not isinstance(raw, dict):
        raise ContentError(f"{manifest_path}: the top level must be a mapping of sections")
    problems: list[str] = []
    manifest = _parse(raw, problems)
    problems += _reference_problems(manifest, raw)
    content = ContentDirectory(Path(os.path.abspath(root)), manifest)
    problems += content.problems()
    if nodes is not None:
        problems += _owner_problems(manifest, list(nodes))
    if problems:
        raise ContentError(f"{manifest_path}: {len(problems)} problem(s):\n"
                           + "\n".join(f"  - {p}" for p in problems))
    return content
