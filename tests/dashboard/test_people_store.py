"""People, sessions and invitations on both stores (SQLite and the Firestore emulator)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.dashboard.people import PeopleDirectory, PeopleError
from app.store import Store
from kernel.clock import ManualClock
from tests.app.conftest import (
    backend_settings,  # noqa: F401 - the fixture, parametrised per backend
    make_settings,
)
from tests.dashboard.conftest import FAST_HASHER, T0


@pytest.fixture
async def store(tmp_path: Path, backend_settings: dict[str, Any]) -> AsyncIterator[Store]:  # noqa: F811
    from app.composition import open_store

    opened = open_store(make_settings(tmp_path / "data", "http://127.0.0.1:9", **backend_settings))
    yield opened
    await opened.close()


async def test_users_sessions_and_invitations(store: Store) -> None:
    clock = ManualClock(T0)
    people = PeopleDirectory(store, clock, hasher=FAST_HASHER, session_ttl_s=60, invitation_ttl_s=120)
    owner = await people.create_user("acme", "Owner@Acme.test", "owner-password-1", role="owner")
    assert owner.email == "owner@acme.test"
    assert "password" not in repr(owner) and owner.password_hash not in repr(owner)
    with pytest.raises(PeopleError):
        await people.create_user("acme", "owner@acme.test", "another-password", role="agent")
    # Same email, other tenant: another person.
    await people.create_user("beta", "owner@acme.test", "beta-password-1", role="agent")
    assert await people.authenticate("beta", "owner@acme.test", "owner-password-1") is None
    assert await people.authenticate("acme", "owner@acme.test", "owner-password-1") == owner

    token, session = await people.open_session(owner)
    assert token not in repr(session)
    found = await people.session(token)
    assert found is not None and found.user.id == owner.id and found.tenant_id == "acme"
    clock.advance(61)
    assert await people.session(token) is None

    invitation = await people.invite("acme", "new@acme.test", role="marketer", invited_by=owner.id)
    assert (await people.invitation(invitation.token)) is not None
    user = await people.accept(invitation.token, "new-password-1")
    assert user.role == "marketer" and user.tenant_id == "acme"
    with pytest.raises(PeopleError):
        await people.accept(invitation.token, "new-password-2")
    late = await people.invite("acme", "late@acme.test", role="agent", invited_by=owner.id)
    clock.advance(121)
    assert await people.invitation(late.token) is None
    assert [u.email for u in await people.users("acme")] == ["new@acme.test", "owner@acme.test"]
