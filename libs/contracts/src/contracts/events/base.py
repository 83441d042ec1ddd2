"""Base class of every event body."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class Event(BaseModel):
    """A frozen event body. `TYPE` names it on the wire; `VERSION` is bumped whenever its
    JSON Schema changes (a test compares against `docs/events/`). Unknown fields are ignored,
    so an old consumer can read a newer event."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=False)
