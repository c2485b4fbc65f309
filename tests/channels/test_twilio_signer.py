"""channels.sms.TwilioSigner and form_fields: the twilio package's signatures and the standard
library's strict form parse, the same answers for any input (issue 15: a Twilio webhook's
signature is computed with the auth token's HMAC blocks hashed once, its form parsed without
``parse_qsl``'s per-field calls)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from channels.sms import TwilioSigner, _FormParams, form_fields

TOKEN = "12345678901234567890123456789012"

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
_params = st.dictionaries(_text, st.lists(_text, min_size=1, max_size=3), max_size=6)
_urls = st.sampled_from(
    [
        "https://leads.example.com/api/webhooks/twilio/sms",
        "https://leads.example.com:443/api/webhooks/twilio/sms",
        "http://127.0.0.1:8000/api/webhooks/twilio/sms?tenant=a&x=%20y",
        "http://leads.example.com/sms",
        "https://leads.example.com:8443/sms",
    ]
)


def _form(params: dict[str, list[str]]) -> _FormParams:
    form = _FormParams()
    form.update(params)
    return form


@settings(max_examples=300, deadline=None)
@given(url=_urls, params=_params, token=st.sampled_from([TOKEN, "", "k" * 100, "é"]))
def test_signature_is_the_validators(url: str, params: dict[str, list[str]], token: str) -> None:
    form = _form(params)
    expected = RequestValidator(token).compute_signature(url, form)
    assert TwilioSigner(token).signature(url, form) == expected
    # and validity, for that signature, for a wrong one, and for the URL with/without its port
    assert TwilioSigner(token).valid(url, form, expected) is True
    assert TwilioSigner(token).valid(url, form, expected[:-2] + "==") is RequestValidator(token).validate(
        url, form, expected[:-2] + "=="
    )


@pytest.mark.parametrize(
    ("signed_url", "checked_url"),
    [
        ("https://a.example.com:443/sms", "https://a.example.com/sms"),
        ("https://a.example.com/sms", "https://a.example.com:443/sms"),
        ("http://a.example.com:80/sms", "http://a.example.com/sms"),
        ("https://a.example.com:8443/sms", "https://a.example.com/sms"),
        ("https://a.example.com/sms", "https://a.example.com:8443/sms"),
    ],
)
def test_ports_are_accepted_as_the_validator_accepts_them(signed_url: str, checked_url: str) -> None:
    form = _form({"Body": ["hi"], "From": ["+33612345678"]})
    signature = RequestValidator(TOKEN).compute_signature(signed_url, form)
    assert TwilioSigner(TOKEN).valid(checked_url, form, signature) is RequestValidator(TOKEN).validate(
        checked_url, form, signature
    )


def test_a_body_hash_url_goes_to_the_validator() -> None:
    body = '{"a": 1}'
    validator = RequestValidator(TOKEN)
    url = f"https://a.example.com/sms?bodySHA256={validator.compute_hash(body)}"
    signature = validator.compute_signature(url, {})
    assert TwilioSigner(TOKEN).valid(url, body, signature) is True
    assert TwilioSigner(TOKEN).valid(url, body + " ", signature) is False


@settings(max_examples=500, deadline=None)
@given(
    text=st.one_of(
        st.text(alphabet="ab=&+%20éX9;", min_size=1, max_size=40),
        st.dictionaries(_text, _text, max_size=6).map(urlencode).filter(bool),
    )
)
def test_form_fields_is_strict_parse_qsl(text: str) -> None:
    try:
        expected: object = parse_qsl(text, keep_blank_values=True, strict_parsing=True, errors="strict")
    except ValueError as exc:  # UnicodeDecodeError included
        with pytest.raises(type(exc)):
            form_fields(text)
        return
    assert form_fields(text) == expected
