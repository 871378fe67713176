"""Typed model of a content directory: the manifest `fmeaa-content.yaml` and the files it names.

A content directory is the version-controlled source of truth for what every FME node must
hold. The manifest is validated completely (schema, file existence, cross references) before
any node is contacted, and every problem is reported at once with the file and key it is in.

Secrets never appear in a manifest: a property value may be a reference
`{secret: "env:NAME"}` or `{secret: "aws-sm:SECRET_ID#key"}`, resolved at sync time.
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

MANIFEST_NAME = "fmeaa-content.yaml"
# Services an FME Server item can be registered with (Safe's REST API v3 docs; fmeflow-cli
# `cmd/workspaces.go`).
KNOWN_SERVICES = ("fmedatadownload", "fmedatastreaming", "fmejobsubmitter", "fmekmllink",
                  "fmenotification")
# Per-node folders that must never be synced: job logs, backups and temp files belong to one node.
NODE_LOCAL_CONNECTIONS = ("FME_SHAREDRESOURCE_LOG", "FME_SHAREDRESOURCE_TEMP",
                          "FME_SHAREDRESOURCE_BACKUP")
_NAME = r"^[^/\\]{1,200}$"
_SECRET_REF = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|aws-sm:[^#\s]+(#[^#\s]+)?)$")
# Quartz cron (FME schedules): sec min hour day-of-month month day-of-week [year].
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?/,#LW-]+$")


class ContentError(ValueError):
    """The content directory is invalid; the message lists every problem with where it is."""


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid",
                              frozen=True)


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
    name: str | None = Field(default=None, pattern=_NAME,
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
    name: str = Field(pattern=_NAME)
    description: str = ""
    items: list[Item] = Field(default_factory=list)


class Topic(_Model):
    name: str = Field(pattern=_NAME)
    description: str = ""


class _Notifier(_Model):
    name: str = Field(pattern=_NAME)
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

    name: str = Field(pattern=_NAME)
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

    name: str = Field(pattern=_NAME)
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
    name: str = Field(pattern=_NAME, description="The project's name on FME Flow (as exported).")


class SchedulePolicy(StrEnum):
    ALL = "all"  # enabled on every node: fires N times (use only for node-local work)
    ONE = "one"  # enabled on one owner node, present but disabled on the others


class Schedule(_Model):
    name: str = Field(pattern=_NAME)
    category: str = Field(pattern=_NAME)
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

    @field_validator("connection")
    @classmethod
    def _shared_only(cls, value: str) -> str:
        if value in NODE_LOCAL_CONNECTIONS:
            raise ValueError(f"{value} holds one node's own files (logs, temp, backups) and is "
                             "never synced")
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

    @model_validator(mode="after")
    def _consistent(self) -> ContentManifest:
        problems: list[str] = []
        _unique(problems, "repositories", [r.name for r in self.repositories])
        for repo in self.repositories:
            _unique(problems, f"repositories[{repo.name}].items", [i.item_name for i in repo.items])
        _unique(problems, "topics", [t.name for t in self.topics])
        _unique(problems, "subscriptions", [s.name for s in self.subscriptions])
        _unique(problems, "publications", [p.name for p in self.publications])
        _unique(problems, "schedules", [s.key for s in self.schedules])
        _unique(problems, "connections", [c.name for c in self.connections or []])
        _unique(problems, "deploymentParameters",
                [d.name for d in self.deployment_parameters or []])
        _unique(problems, "projects", [p.name for p in self.projects or []])
        topics = {t.name for t in self.topics}
        for kind, notifiers in (("subscriptions", self.subscriptions),
                                ("publications", self.publications)):
            for n in notifiers:
                for missing in sorted(set(n.topics) - topics):
                    problems.append(f"{kind}[{n.name}]: topic {missing!r} is not in topics")
        items = {(r.name, i.item_name) for r in self.repositories for i in r.items}
        for s in self.schedules:
            if (s.repository, s.workspace) not in items:
                problems.append(f"schedules[{s.key}]: workspace {s.repository}/{s.workspace} "
                                "is not in repositories")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _unique(problems: list[str], where: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            problems.append(f"{where}: {name!r} appears twice")
        seen.add(name)


def _format(manifest: Path, error: ValidationError) -> str:
    lines = [f"{manifest}: {error.error_count()} problem(s):"]
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see examples/content/fmeaa-content.yaml)"
        lines.append(f"  - {where}: {message}")
    return "\n".join(lines)


def _inside(root: Path, relative: str) -> Path | None:
    """`root/relative`, or None when `..` or an absolute path leads out of `root` (lexically:
    no filesystem calls, so checking 1,000 files stays cheap)."""
    base = os.path.normpath(os.path.abspath(root))
    candidate = os.path.normpath(os.path.join(base, relative))
    return Path(candidate) if candidate == base or candidate.startswith(base + os.sep) else None


class ContentDirectory:
    """A validated content directory: the manifest plus the resolved paths of its files."""

    def __init__(self, root: Path, manifest: ContentManifest) -> None:
        self.root = root
        self.manifest = manifest

    def item_path(self, item: Item) -> Path:
        return Path(os.path.normpath(os.path.join(self.root, item.file)))

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
        Hidden files (.git, editor swap files) are skipped."""
        base = Path(os.path.normpath(os.path.join(self.root, folder.source)))
        target = "/" + folder.target.strip("/")
        found = []
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(base)
            if path.is_file() and not any(part.startswith(".") for part in rel.parts):
                found.append((str(PurePosixPath(target) / rel.as_posix()), path))
        return found


def load_content_dir(root: Path) -> ContentDirectory:
    """Read and check a content directory; raises ContentError listing every problem."""
    manifest_path = root / MANIFEST_NAME
    if not root.is_dir():
        raise ContentError(f"{root}: not a directory")
    if not manifest_path.is_file():
        raise ContentError(f"{root}: no {MANIFEST_NAME} (run `fmeaa export` to create one "
                           "from a node)")
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
    try:
        manifest = ContentManifest.model_validate(raw)
    except ValidationError as exc:
        raise ContentError(_format(manifest_path, exc)) from None
    problems: list[str] = []
    for repo in manifest.repositories:
        for item in repo.items:
            path = _inside(root, item.file)
            if path is None:
                problems.append(f"repositories[{repo.name}]: {item.file!r} is outside the "
                                "content directory")
            elif not path.is_file():
                problems.append(f"repositories[{repo.name}]: file {item.file!r} does not exist")
    for project in manifest.projects or []:
        path = _inside(root, project.file)
        if path is None:
            problems.append(f"projects[{project.name}]: {project.file!r} is outside the content "
                            "directory")
        elif not path.is_file():
            problems.append(f"projects[{project.name}]: file {project.file!r} does not exist")
    for folder in manifest.resources:
        path = _inside(root, folder.source)
        if path is None or not path.is_dir():
            problems.append(f"resources: folder {folder.source!r} does not exist in {root}")
    if problems:
        raise ContentError(f"{manifest_path}: {len(problems)} problem(s):\n"
                           + "\n".join(f"  - {p}" for p in problems))
    return ContentDirectory(Path(os.path.abspath(root)), manifest)


