"""bound_parsed keeps the parser's own message or status when there is nothing to cut or replace
(issue 15: rebuilding every message was most of a WhatsApp webhook's parse), and otherwise gives
exactly what cleaning each field gives (the reference below is the rule of channels.base)."""

from __future__ import annotations

import json
import math
from dataclasses import fields
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from channels.base import (
    MAX_FIELD_CHARS,
    DeliveryStatus,
    InboundMessage,
    ParsedWebhook,
    bound_parsed,
    clean_text,
    clean_value,
)
from channels.whatsapp import WhatsAppChannel

MAX_CHARS = 4096


def reference_message(m: InboundMessage, max_chars: int) -> InboundMessage:
    """Every field cleaned, whatever it holds (what bound_parsed did for every message)."""
    text = clean_text(m.text)
    metadata = clean_value(m.metadata) or {}
    if len(text) > max_chars:
        metadata["truncated_from"] = len(text)
        text = text[:max_chars]

    def cut(value: str | None) -> str | None:
        return None if value is None else clean_text(value[:MAX_FIELD_CHARS])

    return InboundMessage(
        channel=m.channel,
        provider_message_id=clean_text(m.provider_message_id[:MAX_FIELD_CHARS]),
        sender=clean_text(m.sender[:MAX_FIELD_CHARS]),
        recipient=clean_text(m.recipient[:MAX_FIELD_CHARS]),
        text=text,
        kind=m.kind,
        timestamp=m.timestamp,
        contact_name=cut(m.contact_name),
        choice_id=cut(m.choice_id),
        reply_to=cut(m.reply_to),
        media=clean_value(m.media) if m.media is not None else None,
        location=clean_value(m.location) if m.location is not None else None,
        metadata=metadata,
    )


def same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (NaN equal to NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, InboundMessage | DeliveryStatus):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in fields(a))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def test_a_clean_parse_is_kept_as_the_parser_made_it() -> None:
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "123"},
                            "contacts": [{"profile": {"name": "Zoé"}, "wa_id": "33612345678"}],
                            "messages": [
                                {
                                    "from": "33612345678",
                                    "id": "wamid.1",
                                    "timestamp": "1700000000",
                                    "type": "text",
                                    "text": {"body": "Bonjour, un devis ?"},
                                }
                            ],
                            "statuses": [{"id": "wamid.0", "status": "read", "recipient_id": "33612345678"}],
                        },
                    }
                ],
            }
        ],
    }
    parsed = WhatsAppChannel(access_token="x", phone_number_id="123", app_secret="s")._parse(
        json.dumps(body).encode()
    )
    bounded = bound_parsed(parsed, max_chars=MAX_CHARS)
    assert bounded is parsed
    assert bounded.messages[0] is parsed.messages[0]
    assert bounded.statuses[0] is parsed.statuses[0]


_texts = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), max_size=5),  # surrogates
    st.builds(lambda n: "a" * n, st.sampled_from([MAX_FIELD_CHARS, MAX_FIELD_CHARS + 1, 4096, 4097])),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    _texts,
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(_texts, st.integers(max_value=9)), inner, max_size=4),
        st.builds(lambda n: list(range(n)), st.sampled_from([100, 101])),
    ),
    max_leaves=12,
)


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": value}
    return value


@settings(max_examples=400, deadline=None)
@given(
    text=_texts,
    ids=st.tuples(_texts, _texts, _texts),
    optional=st.tuples(st.none() | _texts, st.none() | _texts, st.none() | _texts),
    metadata=st.one_of(st.dictionaries(_texts, _values, max_size=4), st.builds(_nested, st.integers(7, 9))),
    media=st.none() | _values,
    location=st.none() | _values,
)
def test_bound_message_equals_every_field_cleaned(
    text: str,
    ids: tuple[str, str, str],
    optional: tuple[str | None, str | None, str | None],
    metadata: dict[str, Any],
    media: Any,
    location: Any,
) -> None:
    message = InboundMessage(
        channel="whatsapp",
        provider_message_id=ids[0],
        sender=ids[1],
        recipient=ids[2],
        text=text,
        contact_name=optional[0],
        choice_id=optional[1],
        reply_to=optional[2],
        media=media,
        location=location,
        metadata=metadata,
    )
    got = bound_parsed(ParsedWebhook(messages=[message]), max_chars=10).messages[0]
    assert same(got, reference_message(message, 10))


@settings(max_examples=200, deadline=None)
@given(ids=st.tuples(_texts, _texts, _texts), errors=st.tuples(st.none() | _texts, st.none() | _texts))
def test_bound_status_equals_every_field_cleaned(
    ids: tuple[str, str, str], errors: tuple[str | None, str | None]
) -> None:
    status = DeliveryStatus(
        channel="whatsapp",
        provider_message_id=ids[0],
        status="failed",
        recipient=ids[1],
        sender=ids[2],
        error_code=errors[0],
        error_title=errors[1],
    )

    def cut(value: str | None) -> str | None:
        return None if value is None else clean_text(value[:MAX_FIELD_CHARS])

    expected = DeliveryStatus(
        channel="whatsapp",
        provider_message_id=clean_text(ids[0][:MAX_FIELD_CHARS]),
        status="failed",
        recipient=clean_text(ids[1][:MAX_FIELD_CHARS]),
        sender=clean_text(ids[2][:MAX_FIELD_CHARS]),
        error_code=cut(errors[0]),
        error_title=cut(errors[1]),
    )
    assert same(bound_parsed(ParsedWebhook(statuses=[status]), max_chars=10).statuses[0], expected)
