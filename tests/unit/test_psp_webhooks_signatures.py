"""Webhook signature verification: HMAC over "<t>.<raw body>", 300 s tolerance, several secrets."""

from __future__ import annotations

import pytest

from functions.psp_webhooks.signatures import SignatureInvalid, secrets_from, verify_signature
from tests.support.psp_signatures import signature_header

BODY = b'{"id":"evt_1","type":"charge.succeeded","created":1,"data":{"object":{}}}'
NOW = 1_700_000_000


def test_a_signature_with_the_current_secret_verifies() -> None:
    verify_signature(signature_header("whsec_a", NOW, BODY), BODY, secrets=["whsec_a"], now=NOW)


def test_any_of_several_secrets_verifies_during_a_rotation() -> None:
    verify_signature(signature_header("whsec_old", NOW, BODY), BODY, secrets=["whsec_new", "whsec_old"], now=NOW)
    header = f"t={NOW},v1=deadbeef,v1={signature_header('whsec_new', NOW, BODY).split('v1=')[1]}"
    verify_signature(header, BODY, secrets=["whsec_new"], now=NOW)


@pytest.mark.parametrize(
    ("header", "now"),
    [
        (signature_header("whsec_other", NOW, BODY), NOW),  # forged
        (signature_header("whsec_a", NOW - 301, BODY), NOW),  # stale
        (signature_header("whsec_a", NOW + 301, BODY), NOW),  # from the future
        (signature_header("whsec_a", NOW, BODY + b" "), NOW),  # body changed after signing
        (None, NOW),
        ("", NOW),
        ("v1=abc", NOW),
        (f"t={NOW}", NOW),
        ("t=abc,v1=abc", NOW),
    ],
)
def test_bad_signatures_are_refused(header: str | None, now: int) -> None:
    with pytest.raises(SignatureInvalid) as refused:
        verify_signature(header, BODY, secrets=["whsec_a"], now=now)
    assert (refused.value.status_code, refused.value.code) == (400, "signature_invalid")


def test_edge_of_the_tolerance_still_verifies() -> None:
    verify_signature(signature_header("whsec_a", NOW - 300, BODY), BODY, secrets=["whsec_a"], now=NOW)


def test_secret_values_are_one_secret_or_a_json_set_of_them() -> None:
    assert secrets_from("whsec_plain") == ["whsec_plain"]
    assert secrets_from('{"current": "a", "previous": "b"}') == ["a", "b"]
    assert secrets_from('["a", "", "c"]') == ["a", "c"]
    assert secrets_from("12345") == ["12345"]


@pytest.mark.parametrize(
    "header",
    [
        f"t={NOW},v1={'é' * 64}",  # a non-ASCII signature of the right length
        f"t={NOW},v1=ü",
        f"t={NOW},v1={signature_header('whsec_a', NOW, BODY).split('v1=')[1][:-1]}\u00e9",
        f"t={NOW},v1=\u0661\u0662",
        "t=\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660,v1=abc",  # Arabic-Indic digits
    ],
)
def test_a7_a_non_ascii_signature_is_refused_not_an_error(header: str) -> None:
    with pytest.raises(SignatureInvalid) as refused:
        verify_signature(header, BODY, secrets=["whsec_a"], now=NOW)
    assert (refused.value.status_code, refused.value.code) == (400, "signature_invalid")
