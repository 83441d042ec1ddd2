"""Where the dev stack keeps things.

Contract:
- The repo root is ``$BATCHYARD_HOME`` if set, else the nearest directory at or
  above the current working directory that contains ``.git`` or ``Makefile``.
- ``.cache/`` holds downloaded/built tools (safe to keep across runs and in CI
  caches); ``.batchyard/`` holds runtime state (pid files, logs, data, the
  admin key). Both are git-ignored and created on demand by :meth:`Paths.ensure`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT_MARKERS = (".git", "Makefile")


class RepoRootNotFoundError(RuntimeError):
    """No directory containing ``.git`` or ``Makefile`` above the start dir."""


def find_repo_root(start: Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """Return the repo root (absolute), honouring ``BATCHYARD_HOME``."""
    env = os.environ if environ is None else environ
    home = env.get("BATCHYARD_HOME")
    if home:
        return Path(home).expanduser().resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if any((candidate / marker).exists() for marker in ROOT_MARKERS):
            return candidate
    raise RepoRootNotFoundError(
        f"no .git or Makefile found at or above {here}; run from the repo or set BATCHYARD_HOME"
    )


@dataclass(frozen=True)
class Paths:
    """All dev-stack locations, derived from the repo root."""

    root: Path

    # --- .cache/: tools -------------------------------------------------
    @property
    def cache(self) -> Path:
        return self.root / ".cache"

    @property
    def m2(self) -> Path:
        return self.cache / "m2"

    @property
    def kafka_home(self) -> Path:
        return self.cache / "kafka"

    @property
    def kafka_lib(self) -> Path:
        return self.kafka_home / "lib"

    @property
    def kafka_pom(self) -> Path:
        return self.root / "libs" / "devstack" / "kafka" / "pom.xml"

    @property
    def go_path(self) -> Path:
        return self.cache / "go"

    @property
    def cache_bin(self) -> Path:
        return self.cache / "bin"

    @property
    def ferretdb_bin(self) -> Path:
        return self.cache_bin / "ferretdb"

    # --- .batchyard/: runtime ------------------------------------------
    @property
    def state(self) -> Path:
        return self.root / ".batchyard"

    @property
    def run(self) -> Path:
        return self.state / "run"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def data(self) -> Path:
        return self.state / "data"

    @property
    def kafka_data(self) -> Path:
        return self.data / "kafka"

    @property
    def ferretdb_data(self) -> Path:
        return self.data / "ferretdb"

    @property
    def admin_key(self) -> Path:
        return self.state / "admin.key"

    # --- the project's virtualenv -------------------------------------
    @property
    def venv_bin(self) -> Path:
        return self.root / ".venv" / "bin"

    def log_file(self, name: str) -> Path:
        """Log file of the process called ``name``."""
        return self.logs / f"{name}.log"

    def ensure(self) -> None:
        """Create the runtime and cache directories (idempotent)."""
        for d in (
            self.cache,
            self.cache_bin,
            self.run,
            self.logs,
            self.kafka_data,
            self.ferretdb_data,
        ):
            d.mkdir(parents=True, exist_ok=True)

    @classmethod
    def discover(cls, environ: Mapping[str, str] | None = None) -> Paths:
        """Paths for the repo found by :func:`find_repo_root`."""
        return cls(find_repo_root(environ=environ))
