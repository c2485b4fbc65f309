"""Twilio webhooks on the hot path (issue 15): a signature is computed once when Twilio signed the
URL without its port (the other variant only when that fails), a non-ASCII signature header is a
refusal and not a crash, a number already seen is not parsed again, and a number already in
E.164 that phonenumbers would give back as it is (a Twilio sender's) is not parsed at all."""

from __future__ import annotations

from typing import Any

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.base import SignatureError
from channels.sms import TwilioSigner, _normalized, normalize_number
from tests.channels.test_sms_webhook import OUR_NUMBER, URL, channel, fixture, signed


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
    assert normalize_number(" 06 12 34 56 78 ", default_region="FR") == "+33612345678"
    assert normalize_number("06 12 34 56 78", default_region="FR") == "+33612345678"
    assert _normalized.cache_info().hits == 1  # stripped first: one entry for both spellings
    assert normalize_number("40404") == "40404"  # a short code stays as it is
    assert normalize_number(OUR_NUMBER) == OUR_NUMBER
    assert _normalized.cache_info().maxsize == 4096


def test_an_e164_number_is_not_parsed_unless_a_national_prefix_follows_its_country_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _normalized.cache_clear()
    parsed: list[str] = []
    parse = phonenumbers.parse

    def counted(number: str, region: str | None = None, *args: Any, **kwargs: Any) -> Any:
        parsed.append(number)
        return parse(number, region, *args, **kwargs)

    monkeypatch.setattr(phonenumbers, "parse", counted)
    for number in ("+15017122661", "+33612345678", "+390612345678", "+8613800138000"):
        assert normalize_number(number) == number
    assert parsed == []
    # a trunk prefix after the country code is stripped by the full parse, as before
    assert normalize_number("+330612345678") == "+33612345678"
    assert normalize_number("+4407911123456") == "+447911123456"
    assert parsed == ["+330612345678", "+4407911123456"]


@settings(max_examples=3000, deadline=None)
@given(
    code=st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)) | st.integers(1, 999),
    rest=st.text("0123456789", min_size=4, max_size=13),
    region=st.sampled_from([None, "US", "FR", "GB"]),
)
def test_the_e164_fast_path_gives_what_the_full_parse_gives(code: int, rest: str, region: str | None) -> None:
    number = f"+{code}{rest}"
    assert normalize_number(number, default_region=region) == _normalized.__wrapped__(number, region)
