"""Settings every service reads from its environment."""

from __future__ import annotations

from urllib.parse import urlparse

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.topics import Topics


class ServiceSettings(BaseSettings):
    """`KAFKA_BOOTSTRAP_SERVERS`, `MONGODB_URL` (its path names the database),
    `BATCHYARD_TOPIC_PREFIX` (isolates a deployment or a test), `BATCHYARD_HTTP_HOST`/`PORT`
    for health and metrics, `BATCHYARD_INSTANCE_ID` naming this process."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092", validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS")
    )
    mongodb_url: str = Field(
        default="mongodb://127.0.0.1:27017/batchyard", validation_alias=AliasChoices("MONGODB_URL")
    )
    topic_prefix: str = Field(default="", validation_alias=AliasChoices("BATCHYARD_TOPIC_PREFIX"))
    http_host: str = Field(
        default="127.0.0.1", validation_alias=AliasChoices("BATCHYARD_HTTP_HOST")
    )
    http_port: int = Field(default=8000, validation_alias=AliasChoices("BATCHYARD_HTTP_PORT"))
    instance_id: str = Field(default="", validation_alias=AliasChoices("BATCHYARD_INSTANCE_ID"))
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("BATCHYARD_LOG_LEVEL"))

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    @property
    def database_name(self) -> str:
        path = urlparse(self.mongodb_url).path.strip("/")
        return path or "batchyard"


def settings_with_port(port: int) -> type[ServiceSettings]:
    """A settings class whose HTTP port defaults to `port` (env still wins)."""

    class _Settings(ServiceSettings):
        http_port: int = Field(default=port, validation_alias=AliasChoices("BATCHYARD_HTTP_PORT"))

    return _Settings
