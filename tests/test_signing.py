"""kernel.signing.Hmac: the same digest as the standard library's HMAC, for any key (SHA-256, SHA-1)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.signing import Hmac, HmacSha256


@settings(max_examples=300, deadline=None)
@given(key=st.binary(min_size=0, max_size=200), messages=st.lists(st.binary(max_size=3000), max_size=3))
def test_digest_is_rfc_2104_hmac_sha256(key: bytes, messages: list[bytes]) -> None:
    signer = HmacSha256(key)
    for message in messages:  # one signer, several messages: its key state is not consumed
        assert signer.digest(message) == hmac.new(key, message, hashlib.sha256).digest()


def test_keys_at_the_block_boundary_and_past_it() -> None:
    for size in (0, 1, 63, 64, 65, 128, 1000):  # past 64 bytes the key is hashed first
        key = bytes(range(256))[:size] if size <= 256 else b"k" * size
        assert HmacSha256(key).digest(b"body") == hmac.digest(key, b"body", "sha256")


@settings(max_examples=300, deadline=None)
@given(key=st.binary(min_size=0, max_size=200), messages=st.lists(st.binary(max_size=3000), max_size=3))
def test_digest_is_rfc_2104_hmac_sha1(key: bytes, messages: list[bytes]) -> None:
    signer = Hmac(key, "sha1")
    for message in messages:
        assert signer.digest(message) == hmac.new(key, message, hashlib.sha1).digest()


def test_sha1_keys_at_the_block_boundary_and_past_it() -> None:
    for size in (0, 1, 63, 64, 65, 128, 1000):
        key = bytes(range(256))[:size] if size <= 256 else b"k" * size
        assert Hmac(key, "sha1").digest(b"body") == hmac.digest(key, b"body", "sha1")


def test_other_algorithms_are_refused() -> None:
    with pytest.raises(ValueError, match="sha256"):
        Hmac(b"key", "md5")  # type: ignore[arg-type]
