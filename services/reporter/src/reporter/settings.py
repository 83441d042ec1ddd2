"""The reporter's settings: the service's common ones, and how webhooks are delivered."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from servicekit.settings import ServiceSettings


class ReporterSettings(ServiceSettings):
    http_port: int = Field(default=8003, validation_alias=AliasChoices("BATCHYARD_HTTP_PORT"))
    webhook_signing_key: str = Field(
        default="",
        repr=False,
        validation_alias=AliasChoices("BATCHYARD_WEBHOOK_SIGNING_KEY"),
        description="derives each tenant's webhook secret; the same in batch-api and reporter",
    )
    webhook_allow_hosts: str = Field(
        default="",
        validation_alias=AliasChoices("BATCHYARD_WEBHOOK_ALLOW_HOSTS"),
        description="non-public hosts, addresses or networks webhooks may call (comma-separated)",
    )
    webhook_max_attempts: int = Field(
        default=6, ge=1, le=50, validation_alias=AliasChoices("BATCHYARD_WEBHOOK_MAX_ATTEMPTS")
    )
    webhook_backoff_s: float = Field(
        default=1.0,
        gt=0,
        le=3600,
        validation_alias=AliasChoices("BATCHYARD_WEBHOOK_BACKOFF_S"),
        description="wait after the first failed attempt; doubles after each (at most 60 s)",
    )
    webhook_timeout_s: float = Field(
        default=10.0, gt=0, le=120, validation_alias=AliasChoices("BATCHYARD_WEBHOOK_TIMEOUT_S")
    )
