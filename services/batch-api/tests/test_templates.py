"""Template rules: who sees and changes a template, and the batch an instantiation makes."""

from __future__ import annotations

from typing import Any

import pytest

from batch_api.api.problems import Problem
from batch_api.domain.principal import Principal
from batch_api.domain.sharing import may_change, may_see
from batch_api.handlers.templates import instantiation
from batch_api.template_schemas import Instantiate

pytestmark = pytest.mark.unit


def who(user: str, role: str = "operator", tenant: str = "t1") -> Principal:
    return Principal(key_id=f"k-{user}", tenant=tenant, user=user, role=role)  # type: ignore[arg-type]


def template(**fields: Any) -> dict[str, Any]:
    return {
        "_id": "t_1",
        "tenant": "t1",
        "owner": "ann",
        "name": "nightly sync",
        "description": "sync the library",
        "visibility": "private",
        "shared_with": ["bob"],
        "spec": {
            "job_type": "demo.sleep",
            "priority": "high",
            "tags": ["nightly"],
            "config": {"max_concurrent_jobs": 4, "retry": {"max_attempts": 5}},
            "items": [{"seconds": 1}],
        },
        **fields,
    }


def test_who_sees_and_who_changes_a_private_template() -> None:
    doc = template()
    assert may_see(doc, who("ann"))
    assert may_change(doc, who("ann"))
    assert may_see(doc, who("bob"))
    assert not may_change(doc, who("bob"))
    assert not may_see(doc, who("cat"))
    assert may_see(doc, who("root", "admin"))
    assert may_change(doc, who("root", "admin"))
    assert not may_see(doc, who("ann", tenant="t2"))  # the same name in another tenant
    assert not may_see(doc, who("root", "admin", tenant="t2"))


def test_a_tenant_template_is_seen_by_everyone_in_the_tenant_only() -> None:
    doc = template(visibility="tenant")
    assert may_see(doc, who("cat", "viewer"))
    assert not may_change(doc, who("cat"))
    assert not may_see(doc, who("cat", tenant="t2"))


def test_instantiation_takes_the_template_and_applies_overrides() -> None:
    plain = instantiation(template(), Instantiate())
    assert (plain.name, plain.job_type, plain.priority, plain.tags) == (
        "nightly sync",
        "demo.sleep",
        "high",
        ["nightly"],
    )
    assert plain.items == [{"seconds": 1}]
    assert plain.config.max_concurrent_jobs == 4

    changed = instantiation(
        template(),
        Instantiate(
            name="tonight",
            priority="critical",
            config={"max_concurrent_jobs": 1},
            items=[{"seconds": 2}, {"seconds": 3}],
        ),
    )
    assert (changed.name, changed.priority) == ("tonight", "critical")
    assert changed.items == [{"seconds": 2}, {"seconds": 3}]
    assert changed.config.max_concurrent_jobs == 1
    assert changed.config.retry.max_attempts == 5  # the rest of the template's config stays


def test_a_template_without_items_needs_them_at_instantiation() -> None:
    doc = template()
    doc["spec"]["items"] = None
    with pytest.raises(Problem) as refused:
        instantiation(doc, Instantiate())
    assert refused.value.status == 422
    assert instantiation(doc, Instantiate(items=[{"seconds": 0}])).items == [{"seconds": 0}]
