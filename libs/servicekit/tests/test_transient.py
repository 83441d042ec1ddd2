"""Which failures redeliver a batch of events (transient) and which send an event, after a
few tries, to the dead-letter topic: a store error that passes by itself must not cost an
accepted command (a rollback, a pause) its place."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaConnectionError
from pymongo.errors import (
    AutoReconnect,
    DuplicateKeyError,
    ExecutionTimeout,
    OperationFailure,
    WriteError,
)

from servicekit.consume import TransientError, is_transient

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "exc",
    [
        AutoReconnect("the store restarts"),
        KafkaConnectionError("broker away"),
        TimeoutError(),
        ConnectionRefusedError(),
        TransientError("not the leader yet"),
        OperationFailure("WriteConflict", code=112),
        ExecutionTimeout("operation exceeded time limit", code=50),
        OperationFailure("not primary", code=10107),
        OperationFailure("shutting down", code=91),
        OperationFailure("stepped down", code=189),
        OperationFailure("labelled", code=1, details={"errorLabels": ["RetryableWriteError"]}),
    ],
    ids=repr,
)
def test_failures_that_pass_by_themselves_are_transient(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("no such batch"),
        KeyError("job_type"),
        DuplicateKeyError("E11000", code=11000),
        WriteError("document too large", code=17419),
        OperationFailure("bad $set", code=9),
        OperationFailure("no code"),
    ],
    ids=repr,
)
def test_failures_about_the_event_itself_are_not(exc: BaseException) -> None:
    assert not is_transient(exc)
