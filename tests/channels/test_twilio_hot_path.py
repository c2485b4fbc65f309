"""Twilio webhooks on the hot path (issue 15): a signature is computed once when Twilio signed the
URL without its port (the other variant only when that fails), a non-ASCII signature header is a
refusal and not a crash, and a number already seen is not parsed again."""

from __future__ import annotations

from typing import Any

import pytest

from channels.base import SignatureError
from channels.sms import TwilioSigner, _normalized, normalize_number
from tests.channels.test_sms_webhook import LEAD, OUR_NUMBER, URL, channel, fixture, signed


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    urls: list[str] = []
    compute = TwilioSigner.signature

    def counted(self: TwilioSigner, uri: str, params: Any) -> str:
        urls.append(uri)
        return compute(self, uri, params)

    monkeypatch.setattr(TwilioSigner, "signature", counted)
    return urls


def test_one_hmac_for_a_url_signed_without_its_port(monkeypatch: pytest.MonkeyPatch) -> None:
    body = fixture("inbound_sms")
    headers = signed(body)
    urls = _counting(monkeypatch)
    channel().verify(headers, body, url=URL)
    assert urls == [URL]
    # signed with the default port: accepted on the second try, as the twilio validator does
    with_port = "https://leads.example.com:443/api/webhooks/twilio/sms"
    port_headers = signed(body, url=with_port)
    urls.clear()
    channel().verify(port_headers, body, url=URL)
    assert urls == [URL, with_port]
    urls.clear()
    with pytest.raises(SignatureError):
        channel().verify({**headers, "x-twilio-signature": "AAAA"}, body, url=URL)
    assert len(urls) == 2  # both variants tried before refusing


def test_a_non_ascii_signature_is_refused_not_a_crash() -> None:
    body = fixture("inbound_sms")
    with pytest.raises(SignatureError):
        channel().verify({**signed(body), "x-twilio-signature": "é" * 28}, body, url=URL)


def test_numbers_are_normalised_once_and_the_cache_is_bounded() -> None:
    _normalized.cache_clear()
    assert normalize_number(f" {LEAD} ") == LEAD
    assert normalize_number(LEAD) == LEAD
    assert _normalized.cache_info().hits == 1  # stripped first: one entry for both spellings
    assert normalize_number("06 12 34 56 78", default_region="FR") == "+33612345678"
    assert normalize_number("40404") == "40404"  # a short code stays as it is
    assert normalize_number(OUR_NUMBER) == OUR_NUMBER
    assert _normalized.cache_info().maxsize == 4096
