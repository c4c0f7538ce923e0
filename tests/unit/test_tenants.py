"""Tenant ids and the key → tenant cache (functions/common/tenants.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import TypeAdapter, ValidationError

from functions.common.tenants import (
    DEFAULT_TENANT,
    UNREGISTERED_KEY_SECONDS,
    KeyTenants,
    ScopedId,
    Tenant,
    client_text,
    scoped_id,
    tenant_of_id,
)


class Directory:
    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = keys
        self.asked: list[str] = []
        self.failing = False

    def tenant_of_key(self, api_key_id: str) -> str | None:
        self.asked.append(api_key_id)
        if self.failing:
            raise ConnectionError("the directory is unreachable")
        return self.keys.get(api_key_id)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_tenants_ids_are_scoped_and_the_default_tenants_are_kept_as_they_are() -> None:
    assert scoped_id("acme", "po_1") == "acme~po_1"
    assert scoped_id(DEFAULT_TENANT, "po_1") == "po_1"
    assert [tenant_of_id(i) for i in ("acme~po_1", "po_1")] == ["acme", DEFAULT_TENANT]
    with pytest.raises(ValueError, match="already scoped"):
        scoped_id("acme", "acme~po_1")


def test_client_text_unscopes_the_tenants_own_ids_only() -> None:
    text = '{"a": "acme~po_1", "b": "seller_payable:acme~s1", "c": "bigacme~x", "d": "acme-2~y"}'
    assert client_text("acme", text) == '{"a": "po_1", "b": "seller_payable:s1", "c": "bigacme~x", "d": "acme-2~y"}'
    assert client_text(DEFAULT_TENANT, text) == text


@pytest.mark.parametrize(
    ("value", "valid"),
    [("po_1", True), ("acme~po_1", True), ("~po_1", False), ("Acme~po_1", False), ("acme~~po_1", False)],
)
def test_a_scoped_id_is_an_id_with_at_most_one_tenant_prefix(value: str, valid: bool) -> None:
    adapter: TypeAdapter[str] = TypeAdapter(ScopedId)
    if valid:
        assert adapter.validate_python(value) == value
    else:
        with pytest.raises(ValidationError):
            adapter.validate_python(value)


def test_the_default_tenant_cannot_be_registered() -> None:
    created = datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(ValidationError, match="stack's own tenant"):
        Tenant(tenant_id=DEFAULT_TENANT, created_at=created)
    assert Tenant(tenant_id="acme", created_at=created).tenant_id == "acme"


def test_a_registered_key_is_cached_for_good_and_an_unregistered_one_for_a_minute() -> None:
    directory, clock = Directory({"k-acme": "acme"}), Clock()
    tenants = KeyTenants(clock)
    assert [tenants.tenant_of(k, directory) for k in ("k-acme", "k-new", "k-acme", "k-new")] == [
        "acme",
        DEFAULT_TENANT,
        "acme",
        DEFAULT_TENANT,
    ]
    assert directory.asked == ["k-acme", "k-new"]

    # When the unregistered key is registered, it is read as its tenant's once the minute is over
    directory.keys["k-new"] = "globex"
    clock.now += UNREGISTERED_KEY_SECONDS - 1
    assert tenants.tenant_of("k-new", directory) == DEFAULT_TENANT
    clock.now += 2
    assert tenants.tenant_of("k-new", directory) == "globex"
    clock.now += 10 * UNREGISTERED_KEY_SECONDS
    assert tenants.tenant_of("k-acme", directory) == "acme"
    assert directory.asked == ["k-acme", "k-new", "k-new"]


def test_a_directory_that_cannot_answer_is_never_taken_for_the_default_tenant() -> None:
    directory, tenants = Directory({"k-acme": "acme"}), KeyTenants(Clock())
    directory.failing = True
    for _ in range(2):
        with pytest.raises(ConnectionError):
            tenants.tenant_of("k-acme", directory)
    directory.failing = False
    assert tenants.tenant_of("k-acme", directory) == "acme"
    assert directory.asked == ["k-acme"] * 3
