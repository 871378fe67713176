"""The FME versions the emulator can play, and which REST API families each one serves.

One table, each fact with its source. Build numbers Safe has published (in fmeflow-cli's test
samples) are marked so; the others are placeholders in the right range, marked UNCONFIRMED — what
matters to fmeaa is on which side of each threshold below a build falls, not the number itself.

Thresholds are the first build at which safesoftware/fmeflow-cli (cmd/*.go, HEAD d7e61eb) uses a
V4 endpoint family; the emulator serves a V4 family from that build on. REST V3 is served up to
2025.x and is gone from 2026.1 (support.safe.com articles 40926498090125, 25407519073165; article
25407706416909 says 2026.0 — we follow the majority), and from 2026.1 a V4 path with a trailing
slash answers 404 (article 43846485872653).
"""

from __future__ import annotations

from dataclasses import dataclass

# First build serving each V4 family (fmeflow-cli thresholds, file named per entry).
V4_HEALTH = 23139  # healthcheck.go healthcheckV4BuildThreshold; the V4 API itself starts here
V4_LICENSE = 23319  # licenseStatus.go, refresh.go, request.go, machinekey.go
V4_PROJECTS = 23283  # projects.go (list, get)
V4_PROJECT_EXPORT = 23766  # projects_download.go
V4_PROJECT_IMPORT = 25049  # projects_upload.go ("2025.0"); the /projects/imports path: cli e790524
V4_TOKENS = 25208  # login.go; also info.go, jobs.go, engines.go, backup.go, restore.go
V4_JOBS = 25208  # jobs.go
V4_JOB_SUBMIT = 26018  # run.go (V4 job submission only from this build)
V4_RESOURCES = 25208  # "FME Flow 2025.1+" (support.safe.com article 40926498090125)
# Connections and deployment parameters: fmeflow-cli has no threshold (it always uses V4).
# FME Flow 2023.2 is where Safe's docs introduce them — UNCONFIRMED as a build number.
V4_CONNECTIONS = 23700
V4_REPOSITORIES = V4_HEALTH  # repositories.go says 22337 but no V4 API exists before 2023.0


@dataclass(frozen=True)
class FmeVersion:
    """One FME release as the emulator plays it."""

    name: str  # "2026.1"
    build: int
    build_source: str  # where the build number comes from, or "UNCONFIRMED"
    has_v3: bool = True

    @property
    def release_year(self) -> int:
        return int(self.name.split(".")[0])

    @property
    def major(self) -> int:
        """FME numbers a release YEAR.MAJOR (fmeflow-cli info_v4_test.go: 2025.1 → majorVersion 1)."""
        return int(self.name.split(".")[1])

    @property
    def product(self) -> str:
        return "FME Flow" if self.release_year >= 2023 else "FME Server"

    @property
    def build_string(self) -> str:
        return f"{self.product} {self.name} - Build {self.build} - linux-x64"

    @property
    def has_v4(self) -> bool:
        return self.build >= V4_HEALTH

    @property
    def strict_trailing_slash(self) -> bool:
        """From 2026.1 a V4 URL ending in '/' answers 404 (article 43846485872653)."""
        return (self.release_year, self.major) >= (2026, 1)

    def serves(self, api: str, since: int = 0, unconfirmed: bool = False) -> bool:
        """Whether a route of `api` ("v3", "v4" or "other") first served at build `since` exists
        here. UNCONFIRMED V4 routes (no public caller) are served only where V3 is gone: that is
        the only place fmeaa uses them, and claiming them for older releases would be a guess on
        a guess."""
        if api == "v3":
            return self.has_v3
        if api == "v4":
            return self.has_v4 and self.build >= since and not (unconfirmed and self.has_v3)
        return True


VERSIONS: dict[str, FmeVersion] = {v.name: v for v in (
    FmeVersion("2022.2", 22794, "UNCONFIRMED"),
    FmeVersion("2023.2", 23774, "UNCONFIRMED"),
    FmeVersion("2024.2", 24829, "UNCONFIRMED"),
    FmeVersion("2025.1", 25606, "fmeflow-cli cmd/info_v4_test.go"),
    FmeVersion("2025.2", 25811, "UNCONFIRMED"),
    FmeVersion("2026.1", 26180, "UNCONFIRMED", has_v3=False),
)}
NEWEST = "2026.1"
PREVIOUS = "2025.2"  # the release before NEWEST: a rolling upgrade's other half


def version_named(name: str) -> FmeVersion:
    """The emulated release called `name`; a ValueError lists the known ones."""
    try:
        return VERSIONS[name]
    except KeyError:
        raise ValueError(f"unknown FME version {name!r}; the emulator plays "
                         f"{', '.join(VERSIONS)}") from None
