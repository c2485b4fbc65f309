"""WhatsApp webhooks: signature, subscription handshake, parsing of Meta's documented payloads.

_source of the fixtures in tests/fixtures/whatsapp/:
- every message fixture (text, text_with_context, reaction, image, location, contacts,
  unsupported, button, interactive_button_reply, interactive_list_reply, order, system) and
  group_create is an example of ``POST /whatsapp/webhooks`` in Meta's OpenAPI description
  ``business-messaging-api_v23.0.yaml`` (facebook/openapi@ecba623b, MIT), copied unchanged;
- status_* follow the ``StatusMessageValue``/``Statuses``/``StatusError`` schemas of the same
  file and the syntax of Meta's "Status messages webhook reference"
  (developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/status);
  the error codes and titles are Meta's (131047 "Re-engagement message", 131026 "Message
  undeliverable", "Cloud API > Support > Error codes").
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from typing import Any

import pytest

from channels import (
    DeliveryStatus,
    InboundMessage,
    PayloadError,
    SignatureError,
    SubscriptionError,
    WhatsAppChannel,
)
from tests.channels.conftest import first_value, fixture_bytes, load_fixture

APP_SECRET = "test-app-secret"
TOKEN = "test-access-token"


def make_channel(app_secret: str = APP_SECRET) -> WhatsAppChannel:
    return WhatsAppChannel(access_token=TOKEN, phone_number_id="106540352242922", app_secret=app_secret)


def sign(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"x-hub-signature-256": f"sha256={digest}"}


def parse_one(name: str) -> tuple[InboundMessage, dict[str, Any]]:
    body = load_fixture(name)
    parsed = make_channel().parse({}, fixture_bytes(name))
    assert len(parsed.messages) == 1
    assert parsed.statuses == []
    return parsed.messages[0], first_value(body)["messages"][0]


def parse_body(body: Any) -> Any:
    return make_channel().parse({}, json.dumps(body).encode())


# --------------------------------------------------------------------------- verify


class TestVerify:
    def test_right_signature_passes(self) -> None:
        body = fixture_bytes("text")
        make_channel().verify(sign(body), body)

    def test_header_lookup_ignores_case(self) -> None:
        body = fixture_bytes("text")
        make_channel().verify({"X-Hub-Signature-256": sign(body)["x-hub-signature-256"]}, body)

    def test_uppercase_hex_digest_passes(self) -> None:
        body = fixture_bytes("text")
        header = sign(body)["x-hub-signature-256"]
        make_channel().verify(
            {"x-hub-signature-256": "sha256=" + header.removeprefix("sha256=").upper()}, body
        )

    def test_wrong_secret_fails(self) -> None:
        body = fixture_bytes("text")
        with pytest.raises(SignatureError, match="does not match"):
            make_channel().verify(sign(body, secret="another-secret"), body)

    def test_tampered_body_fails(self) -> None:
        body = fixture_bytes("text")
        headers = sign(body)
        with pytest.raises(SignatureError):
            make_channel().verify(headers, body.replace(b"another color", b"another colour"))

    def test_signature_is_over_raw_bytes_not_reserialised_json(self) -> None:
        body = fixture_bytes("text")
        reserialised = json.dumps(json.loads(body), separators=(",", ":")).encode()
        assert json.loads(reserialised) == json.loads(body) and reserialised != body
        with pytest.raises(SignatureError):
            make_channel().verify(sign(body), reserialised)

    def test_missing_header_fails(self) -> None:
        with pytest.raises(SignatureError, match="missing"):
            make_channel().verify({}, fixture_bytes("text"))

    @pytest.mark.parametrize(
        "header",
        ["", "sha256=", "sha1=" + "a" * 40, "sha256=" + "z" * 64, "sha256=" + "a" * 63, "a" * 64],
    )
    def test_malformed_header_fails(self, header: str) -> None:
        with pytest.raises(SignatureError, match="malformed"):
            make_channel().verify({"x-hub-signature-256": header}, fixture_bytes("text"))

    def test_no_app_secret_configured_refuses_even_a_matching_signature(self) -> None:
        body = fixture_bytes("text")
        with pytest.raises(SignatureError, match="not configured"):
            make_channel(app_secret="").verify(sign(body, secret=""), body)

    def test_secret_never_in_error_or_repr(self) -> None:
        body = fixture_bytes("text")
        channel = make_channel()
        with pytest.raises(SignatureError) as info:
            channel.verify(sign(body, secret="x"), body)
        assert APP_SECRET not in str(info.value)
        assert APP_SECRET not in repr(channel) and TOKEN not in repr(channel)


# --------------------------------------------------------------------------- subscription


class TestVerifySubscription:
    def params(self, **overrides: str) -> dict[str, str]:
        params = {"hub.mode": "subscribe", "hub.verify_token": "s3cret", "hub.challenge": "1158201444"}
        params.update(overrides)
        return params

    def test_right_token_returns_challenge(self) -> None:
        assert WhatsAppChannel.verify_subscription(self.params(), "s3cret") == "1158201444"

    @pytest.mark.parametrize(
        "overrides",
        [
            {"hub.verify_token": "wrong"},
            {"hub.verify_token": ""},
            {"hub.mode": "unsubscribe"},
            {"hub.challenge": ""},
        ],
    )
    def test_wrong_params_raise(self, overrides: dict[str, str]) -> None:
        with pytest.raises(SubscriptionError):
            WhatsAppChannel.verify_subscription(self.params(**overrides), "s3cret")

    def test_missing_params_raise(self) -> None:
        with pytest.raises(SubscriptionError):
            WhatsAppChannel.verify_subscription({}, "s3cret")

    def test_unconfigured_verify_token_refuses(self) -> None:
        with pytest.raises(SubscriptionError, match="not configured"):
            WhatsAppChannel.verify_subscription(self.params(**{"hub.verify_token": ""}), "")


# --------------------------------------------------------------------------- parse messages


def assert_common(message: InboundMessage, raw: dict[str, Any], body: dict[str, Any]) -> None:
    value = first_value(body)
    assert message.channel == "whatsapp"
    assert message.provider_message_id == raw["id"]
    assert message.sender == "+" + raw["from"]
    assert message.recipient == value["metadata"]["phone_number_id"]
    assert message.timestamp == float(int(raw["timestamp"]))
    assert message.metadata["whatsapp_type"] == raw["type"]
    assert message.metadata["waba_id"] == body["entry"][0]["id"]


@pytest.mark.parametrize(
    "name",
    [
        "text",
        "text_with_context",
        "reaction",
        "image",
        "location",
        "contacts",
        "unsupported",
        "button",
        "interactive_button_reply",
        "interactive_list_reply",
        "order",
        "system",
    ],
)
def test_every_fixture_gives_common_fields(name: str) -> None:
    message, raw = parse_one(name)
    assert_common(message, raw, load_fixture(name))


def test_text() -> None:
    message, raw = parse_one("text")
    assert message.kind == "text"
    assert message.text == raw["text"]["body"]
    assert message.contact_name == first_value(load_fixture("text"))["contacts"][0]["profile"]["name"]
    assert message.reply_to is None and message.choice_id is None


def test_text_with_context_sets_reply_to() -> None:
    message, raw = parse_one("text_with_context")
    assert message.kind == "text"
    assert message.reply_to == raw["context"]["id"]


def test_click_to_whatsapp_referral_kept_in_metadata() -> None:
    body = load_fixture("text")
    raw = first_value(body)["messages"][0]
    raw["referral"] = {"source_type": "ad", "source_id": "120226305854810726"}
    message = parse_body(body).messages[0]
    assert message.metadata["referral"] == raw["referral"]


def test_interactive_button_reply() -> None:
    message, raw = parse_one("interactive_button_reply")
    reply = raw["interactive"]["button_reply"]
    assert message.kind == "button_reply"
    assert (message.choice_id, message.text) == (reply["id"], reply["title"])
    assert message.reply_to == raw["context"]["id"]


def test_interactive_list_reply() -> None:
    message, raw = parse_one("interactive_list_reply")
    reply = raw["interactive"]["list_reply"]
    assert message.kind == "list_reply"
    assert (message.choice_id, message.text) == (reply["id"], reply["title"])


def test_template_quick_reply_button() -> None:
    message, raw = parse_one("button")
    assert message.kind == "button_reply"
    assert message.text == raw["button"]["text"]
    assert message.choice_id == raw["button"]["payload"]
    assert message.reply_to == raw["context"]["id"]


def test_image_with_caption() -> None:
    message, raw = parse_one("image")
    image = raw["image"]
    assert message.kind == "media"
    assert message.text == image["caption"]
    assert message.media is not None
    assert message.media["type"] == "image"
    for key in ("id", "mime_type", "sha256"):
        assert message.media[key] == image[key]


@pytest.mark.parametrize("media_type", ["video", "document", "audio", "sticker"])
def test_other_media_types(media_type: str) -> None:
    body = load_fixture("image")
    raw = first_value(body)["messages"][0]
    media_obj = {"id": "987", "mime_type": "application/octet-stream", "sha256": "abc="}
    if media_type == "document":
        media_obj["filename"] = "quote.pdf"
    raw.pop("image")
    raw["type"] = media_type
    raw[media_type] = media_obj
    message = parse_body(body).messages[0]
    assert message.kind == "media"
    assert message.text == ""
    assert message.media == {"type": media_type, **media_obj}


def test_location() -> None:
    message, raw = parse_one("location")
    loc = raw["location"]
    assert message.kind == "location"
    assert message.location == {k: loc[k] for k in ("latitude", "longitude", "name", "address")}
    assert loc["name"] in message.text and loc["address"] in message.text


def test_location_without_name_has_empty_text() -> None:
    body = load_fixture("location")
    loc = first_value(body)["messages"][0]["location"]
    for key in ("name", "address", "url"):
        loc.pop(key)
    message = parse_body(body).messages[0]
    assert message.text == ""
    assert message.location is not None and message.location["latitude"] == loc["latitude"]


def test_contacts_summary_is_readable() -> None:
    message, raw = parse_one("contacts")
    shared = raw["contacts"][0]
    assert message.kind == "contacts"
    assert shared["name"]["formatted_name"] in message.text
    assert shared["org"]["company"] in message.text
    assert shared["phones"][0]["phone"] in message.text
    assert message.metadata["contacts"] == raw["contacts"]


def test_reaction() -> None:
    message, raw = parse_one("reaction")
    assert message.kind == "reaction"
    assert message.text == raw["reaction"]["emoji"]
    assert message.reply_to == raw["reaction"]["message_id"]


def test_removed_reaction_has_empty_text() -> None:
    body = load_fixture("reaction")
    first_value(body)["messages"][0]["reaction"].pop("emoji")
    assert parse_body(body).messages[0].text == ""


@pytest.mark.parametrize("name", ["unsupported", "order", "system"])
def test_unsupported_types(name: str) -> None:
    message, raw = parse_one(name)
    assert message.kind == "unsupported"
    assert message.text == ""
    if "errors" in raw:
        assert message.metadata["errors"] == raw["errors"]


def test_system_message_without_contacts_has_no_name() -> None:
    message, _ = parse_one("system")
    assert message.contact_name is None


@pytest.mark.parametrize("new_type", ["poll", "interactive"])
def test_unknown_types_never_crash(new_type: str) -> None:
    body = load_fixture("text")
    raw = first_value(body)["messages"][0]
    raw.pop("text")
    raw["type"] = new_type
    raw[new_type] = {"type": "nfm_reply", "something": {"nested": [1, 2]}}
    message = parse_body(body).messages[0]
    assert message.kind == "unsupported"


def test_unknown_keys_are_ignored() -> None:
    body = load_fixture("interactive_button_reply")
    body["new_top_level"] = {"x": 1}
    body["entry"][0]["new_entry_key"] = True
    value = first_value(body)
    value["new_value_key"] = [1]
    value["messages"][0]["new_message_key"] = "y"
    value["messages"][0]["interactive"]["button_reply"]["new_reply_key"] = 2
    expected, _ = parse_one("interactive_button_reply")
    assert parse_body(body).messages[0] == expected


def test_contact_name_matched_by_wa_id() -> None:
    body = load_fixture("text")
    value = first_value(body)
    other = copy.deepcopy(value["messages"][0])
    other["id"], other["from"] = "wamid.OTHER", "447700900123"
    value["messages"].append(other)
    value["contacts"].append({"profile": {"name": "Ada"}, "wa_id": "447700900123"})
    messages = parse_body(body).messages
    assert [m.contact_name for m in messages] == [value["contacts"][0]["profile"]["name"], "Ada"]
    assert [m.sender for m in messages] == ["+16505551234", "+447700900123"]


def test_batched_entries_and_changes_all_parsed() -> None:
    text, button = load_fixture("text"), load_fixture("interactive_button_reply")
    text["entry"].append(button["entry"][0])
    text["entry"][0]["changes"].append(load_fixture("status_read")["entry"][0]["changes"][0])
    parsed = parse_body(text)
    assert [m.kind for m in parsed.messages] == ["text", "button_reply"]
    assert [s.status for s in parsed.statuses] == ["read"]


def test_group_lifecycle_change_is_skipped() -> None:
    parsed = make_channel().parse({}, fixture_bytes("group_create"))
    assert parsed.messages == [] and parsed.statuses == []


# --------------------------------------------------------------------------- parse statuses


@pytest.mark.parametrize("name", ["status_sent", "status_delivered", "status_read", "status_failed"])
def test_statuses(name: str) -> None:
    raw = first_value(load_fixture(name))["statuses"][0]
    parsed = make_channel().parse({}, fixture_bytes(name))
    assert parsed.messages == []
    (status,) = parsed.statuses
    assert isinstance(status, DeliveryStatus)
    assert status.channel == "whatsapp"
    assert status.provider_message_id == raw["id"]
    assert status.status == raw["status"]
    assert status.recipient == "+" + raw["recipient_id"]
    assert status.timestamp == float(int(raw["timestamp"]))
    if raw.get("errors"):
        assert status.error_code == str(raw["errors"][0]["code"])
        assert status.error_title == raw["errors"][0]["title"]
    else:
        assert status.error_code is None and status.error_title is None


def test_failed_because_undeliverable_maps_to_undeliverable() -> None:
    raw = first_value(load_fixture("status_failed_undeliverable"))["statuses"][0]
    (status,) = make_channel().parse({}, fixture_bytes("status_failed_undeliverable")).statuses
    assert status.status == "undeliverable"
    assert status.error_code == str(raw["errors"][0]["code"]) == "131026"


@pytest.mark.parametrize(("wa_status", "expected"), [("played", "read"), ("accepted", "queued")])
def test_other_statuses_are_mapped(wa_status: str, expected: str) -> None:
    body = load_fixture("status_read")
    first_value(body)["statuses"][0]["status"] = wa_status
    assert [s.status for s in parse_body(body).statuses] == [expected]


def test_unknown_status_is_skipped_not_fatal() -> None:
    body = load_fixture("status_read")
    first_value(body)["statuses"][0]["status"] = "something_new"
    assert parse_body(body).statuses == []


def test_value_level_errors_do_not_break_parsing() -> None:
    body = load_fixture("status_read")
    first_value(body)["errors"] = [{"code": 131000, "title": "Something went wrong"}]
    assert len(parse_body(body).statuses) == 1


# --------------------------------------------------------------------------- malformed


@pytest.mark.parametrize(
    ("raw_body", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[]", "JSON object"),
        (b'"text"', "JSON object"),
        (b'{"object": "page", "entry": []}', "whatsapp_business_account"),
        (b'{"entry": []}', "whatsapp_business_account"),
        (b'{"object": "whatsapp_business_account", "entry": {}}', "entry"),
        (b'{"object": "whatsapp_business_account", "entry": [1]}', "entry"),
        (
            b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages"}]}]}',
            "value",
        ),
    ],
)
def test_malformed_bodies_raise_payload_error(raw_body: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        make_channel().parse({}, raw_body)


@pytest.mark.parametrize("missing", ["id", "from"])
def test_message_without_id_or_from_raises(missing: str) -> None:
    body = load_fixture("text")
    first_value(body)["messages"][0].pop(missing)
    with pytest.raises(PayloadError):
        parse_body(body)


def test_messages_not_a_list_raises() -> None:
    body = load_fixture("text")
    first_value(body)["messages"] = {"id": "x"}
    with pytest.raises(PayloadError, match="messages"):
        parse_body(body)


def test_status_without_id_raises() -> None:
    body = load_fixture("status_sent")
    first_value(body)["statuses"][0].pop("id")
    with pytest.raises(PayloadError, match="statuses"):
        parse_body(body)


def test_non_numeric_timestamp_raises() -> None:
    body = load_fixture("text")
    first_value(body)["messages"][0]["timestamp"] = "yesterday"
    with pytest.raises(PayloadError, match="timestamp"):
        parse_body(body)


# --------------------------------------------------------------------------- decoding
def test_bodies_msgspec_refuses_are_read_as_json_loads_reads_them() -> None:
    """The fast decoder (msgspec) refuses lone surrogate escapes and integers past 64 bits; such
    bodies are still read, with the values ``json.loads`` gives (then made safe to store)."""
    body = load_fixture("text")
    value = first_value(body)
    value["messages"][0]["text"]["body"] = "caf\u00e9 \ud83d"  # a lone high surrogate
    value["messages"][0]["order"] = {"big": 2**70}
    raw = json.dumps(body).encode()  # the surrogate as JSON's escape
    assert b"\\ud83d" in raw
    message = make_channel().parse({}, raw).messages[0]
    assert message.text == "caf\u00e9 \ufffd"
    assert message.metadata["order"] == {"big": "<integer out of range>"}
    assert message.provider_message_id == first_value(load_fixture("text"))["messages"][0]["id"]


def test_nesting_too_deep_is_a_payload_error_not_a_crash() -> None:
    raw = b'{"object": "whatsapp_business_account", "entry": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(PayloadError):
        make_channel().parse({}, raw)


def test_the_same_message_from_either_decoder() -> None:
    """A body both decoders read gives one message, whichever read it."""
    raw = fixture_bytes("text")
    fast = make_channel().parse({}, raw).messages[0]
    slow = (
        make_channel().parse({}, json.dumps(json.loads(raw), ensure_ascii=False).encode("utf-16")).messages[0]
    )
    assert fast == slow
