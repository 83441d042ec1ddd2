"""Config precedence: flag, then environment, then the file's profile, then its top level,
then the default; bad config is a usage error naming where it came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchyard_cli.config import (
    DEFAULT_TIMEOUT_S,
    DEFAULT_URL,
    ConfigError,
    ConfigFile,
    Overrides,
    default_config_path,
    load_config,
    resolve,
)

pytestmark = pytest.mark.unit

FILE = ConfigFile(
    Path("/cfg.toml"),
    {
        "url": "http://file:1",
        "api_key": "file-key",
        "timeout": 7,
        "profiles": {"staging": {"url": "https://staging:2", "api_key": "staging-key"}},
    },
)
ENV = {"BATCHYARD_URL": "http://env:3", "BATCHYARD_API_KEY": "env-key", "BATCHYARD_TIMEOUT": "9"}


def test_defaults_without_anything() -> None:
    config = resolve(Overrides(), {}, None)
    assert (config.url, config.api_key, config.timeout) == (DEFAULT_URL, None, DEFAULT_TIMEOUT_S)
    assert config.sources == {"url": "default", "api_key": "not set", "timeout": "default"}


def test_file_top_level_beats_defaults() -> None:
    config = resolve(Overrides(), {}, FILE)
    assert (config.url, config.api_key, config.timeout) == ("http://file:1", "file-key", 7.0)
    assert config.sources["url"] == "file /cfg.toml"


def test_profile_beats_file_top_level_but_keeps_what_it_lacks() -> None:
    config = resolve(Overrides(profile="staging"), {}, FILE)
    assert (config.url, config.api_key, config.timeout) == ("https://staging:2", "staging-key", 7.0)
    assert config.sources["url"] == "file /cfg.toml [profiles.staging]"
    assert config.sources["timeout"] == "file /cfg.toml"


def test_profile_from_environment() -> None:
    config = resolve(Overrides(), {"BATCHYARD_PROFILE": "staging"}, FILE)
    assert config.url == "https://staging:2"


def test_environment_beats_file_and_profile() -> None:
    config = resolve(Overrides(profile="staging"), ENV, FILE)
    assert (config.url, config.api_key, config.timeout) == ("http://env:3", "env-key", 9.0)
    assert set(config.sources.values()) == {"env"}


def test_flags_beat_everything() -> None:
    flags = Overrides(url="http://flag:4/", api_key="flag-key", timeout=1.5, profile="staging")
    config = resolve(flags, ENV, FILE)
    assert (config.url, config.api_key, config.timeout) == ("http://flag:4", "flag-key", 1.5)
    assert set(config.sources.values()) == {"flag"}


def test_empty_environment_values_count_as_unset() -> None:
    config = resolve(Overrides(), {"BATCHYARD_URL": "", "BATCHYARD_API_KEY": ""}, FILE)
    assert config.url == "http://file:1"
    assert config.api_key == "file-key"


@pytest.mark.parametrize(
    ("flags", "env", "file", "message"),
    [
        (Overrides(profile="nope"), {}, FILE, "profile 'nope' is not defined"),
        (Overrides(profile="nope"), {}, None, "no config file"),
        (Overrides(url="ftp://x"), {}, None, "url from flag must start with http"),
        (Overrides(), {"BATCHYARD_TIMEOUT": "soon"}, None, "timeout from env must be a number"),
        (Overrides(), {"BATCHYARD_TIMEOUT": "0"}, None, "must be positive"),
        (Overrides(), {}, ConfigFile(Path("/c"), {"urll": "x"}), "unknown setting(s) urll"),
        (
            Overrides(profile="p"),
            {},
            ConfigFile(Path("/c"), {"profiles": {"p": {"key": "x"}}}),
            "unknown setting(s) key",
        ),
    ],
)
def test_bad_config_is_a_clear_error(
    flags: Overrides, env: dict[str, str], file: ConfigFile | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(flags, env, file)


def test_config_path_from_env_then_xdg_then_home() -> None:
    assert default_config_path({"BATCHYARD_CONFIG": "/a.toml"}) == Path("/a.toml")
    assert default_config_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/batchyard/config.toml")
    assert default_config_path({}).parts[-3:] == (".config", "batchyard", "config.toml")


def test_load_config_reads_toml_and_requires_an_explicit_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('url = "http://toml:5"\n[profiles.p]\napi_key = "k"\n')
    config = load_config(Overrides(config_path=path, profile="p"), env={})
    assert (config.url, config.api_key, config.config_path) == ("http://toml:5", "k", path)
    # The default location may be missing; a named one may not.
    assert load_config(Overrides(), env={"XDG_CONFIG_HOME": str(tmp_path)}).config_path is None
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Overrides(config_path=tmp_path / "missing.toml"), env={})
    path.write_text("url = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(Overrides(config_path=path), env={})
