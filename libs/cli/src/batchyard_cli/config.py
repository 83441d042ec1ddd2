"""Where the CLI finds its server, key and timeout.

Each setting is taken from the first place that has it: a command-line flag, the environment
(`BATCHYARD_URL`, `BATCHYARD_API_KEY`, `BATCHYARD_TIMEOUT`), the selected profile of the config
file, the config file's top level, the built-in default. The config file is TOML, at
`--config`, `$BATCHYARD_CONFIG`, or `$XDG_CONFIG_HOME/batchyard/config.toml`
(`~/.config/batchyard/config.toml`):

    url = "http://127.0.0.1:8000"
    api_key = "bya_..."
    timeout = 30

    [profiles.staging]
    url = "https://batchyard.staging.example"
    api_key = "bya_..."

A profile is chosen with `--profile` or `$BATCHYARD_PROFILE`. Resolution is a pure function of
the flags, the environment and the file's parsed content (`resolve`); only `load_config` reads.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchyard_cli.errors import InputError

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_S = 30.0

URL_ENV = "BATCHYARD_URL"
KEY_ENV = "BATCHYARD_API_KEY"
TIMEOUT_ENV = "BATCHYARD_TIMEOUT"
CONFIG_ENV = "BATCHYARD_CONFIG"
PROFILE_ENV = "BATCHYARD_PROFILE"

SETTINGS = ("url", "api_key", "timeout")


class ConfigError(InputError):
    """The configuration cannot be used as given (a usage error, exit code 2)."""


@dataclass(frozen=True)
class Overrides:
    """Settings given as command-line flags (None: not given)."""

    url: str | None = None
    api_key: str | None = None
    timeout: float | None = None
    config_path: Path | None = None
    profile: str | None = None


@dataclass(frozen=True)
class ConfigFile:
    """A config file's parsed content, with the path it came from."""

    path: Path
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Config:
    """The resolved settings; `sources` names where each came from (for `config show`)."""

    url: str
    api_key: str | None
    timeout: float
    profile: str | None = None
    config_path: Path | None = None
    sources: Mapping[str, str] = field(default_factory=dict)


def default_config_path(env: Mapping[str, str]) -> Path:
    """`$BATCHYARD_CONFIG`, else `$XDG_CONFIG_HOME/batchyard/config.toml`, else under ~/.config."""
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]).expanduser()
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "batchyard" / "config.toml"


def read_config_file(path: Path, *, required: bool) -> ConfigFile | None:
    """Parses the TOML file at `path`; a missing file is None unless `required`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError(f"config file {path} does not exist") from None
        return None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from exc
    try:
        return ConfigFile(path, tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def load_config(flags: Overrides, env: Mapping[str, str] | None = None) -> Config:
    """Reads the config file the flags or environment point at and resolves every setting."""
    environ = os.environ if env is None else env
    explicit = flags.config_path is not None or bool(environ.get(CONFIG_ENV))
    path = flags.config_path or default_config_path(environ)
    return resolve(flags, environ, read_config_file(path, required=explicit))


def resolve(flags: Overrides, env: Mapping[str, str], file: ConfigFile | None) -> Config:
    """Flag, then environment, then the file's profile, then its top level, then the default."""
    data: Mapping[str, Any] = file.data if file else {}
    _check_keys(data, file, allowed={*SETTINGS, "profiles"})
    profile_name = flags.profile or env.get(PROFILE_ENV) or None
    profile = _profile(data, file, profile_name)
    label = str(file.path) if file else ""

    layers: list[tuple[str, Mapping[str, Any]]] = [
        ("flag", {"url": flags.url, "api_key": flags.api_key, "timeout": flags.timeout}),
        (
            "env",
            {
                "url": env.get(URL_ENV) or None,
                "api_key": env.get(KEY_ENV) or None,
                "timeout": env.get(TIMEOUT_ENV) or None,
            },
        ),
        (f"file {label} [profiles.{profile_name}]", profile),
        (f"file {label}", data),
    ]
    chosen: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        for source, layer in layers:
            value = layer.get(setting)
            if value is not None:
                chosen[setting], sources[setting] = value, source
                break
        else:
            sources[setting] = "default" if setting != "api_key" else "not set"

    return Config(
        url=_url(chosen.get("url", DEFAULT_URL), sources["url"]),
        api_key=_api_key(chosen.get("api_key"), sources["api_key"]),
        timeout=_timeout(chosen.get("timeout", DEFAULT_TIMEOUT_S), sources["timeout"]),
        profile=profile_name,
        config_path=file.path if file else None,
        sources=sources,
    )


def _check_keys(data: Mapping[str, Any], file: ConfigFile | None, allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown and file is not None:
        raise ConfigError(
            f"config file {file.path}: unknown setting(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(allowed))})"
        )


def _profile(
    data: Mapping[str, Any], file: ConfigFile | None, name: str | None
) -> Mapping[str, Any]:
    if name is None:
        return {}
    profiles = data.get("profiles", {})
    if not isinstance(profiles, Mapping) or name not in profiles:
        where = f"config file {file.path}" if file else "no config file"
        raise ConfigError(f"profile {name!r} is not defined ({where})")
    profile = profiles[name]
    if not isinstance(profile, Mapping):
        raise ConfigError(f"profile {name!r} must be a table of settings")
    _check_keys(profile, file, allowed=set(SETTINGS))
    return profile


def _url(value: Any, source: str) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ConfigError(f"url from {source} must start with http:// or https://: {value!r}")
    return value.rstrip("/")


def _api_key(value: Any, source: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"api_key from {source} must be a non-empty string")
    return value.strip()


def _timeout(value: Any, source: str) -> float:
    try:
        timeout = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"timeout from {source} must be a number of seconds: {value!r}") from None
    if not timeout > 0:
        raise ConfigError(f"timeout from {source} must be positive: {value!r}")
    return timeout
