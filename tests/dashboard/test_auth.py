"""Sign-in, sessions, CSRF, roles and invitations, through the real app (HTTP test client)."""

from __future__ import annotations

import os
import re

from click.testing import CliRunner
from litestar import Litestar
from litestar.testing import AsyncTestClient

from app.cli.main import main as cli
from app.composition import Runtime
from app.dashboard.auth import SESSION_COOKIE
from app.dashboard.people import LOCKOUT_S, MAX_FAILURES, SESSION_TTL_S
from kernel.clock import ManualClock
from tests.dashboard.conftest import AGENT, AUTH, CSRF_FIELD, MARKETER, OWNER, dashboard_people, sign_in


async def test_wrong_password_is_refused_without_a_session(client: AsyncTestClient[Litestar]) -> None:
    page = await client.get("/app/signin")
    token = CSRF_FIELD.search(page.text)
    assert token
    response = await client.post(
        "/app/signin",
        data={
            "tenant": "demo",
            "email": OWNER[0],
            "password": "not-the-password",
            "csrf_token": token.group(1),
        },
        follow_redirects=False,
    )
    assert response.status_code == 401
    assert "Wrong workspace, email or password." in response.text
    assert SESSION_COOKIE not in client.cookies
    assert (await client.get("/api/v1/me")).status_code == 401
    # The same email in another workspace does not sign in either.
    response = await client.post(
        "/app/signin",
        data={"tenant": "other", "email": OWNER[0], "password": OWNER[1], "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 401


async def test_sign_in_opens_an_http_only_session_usable_on_the_api(
    client: AsyncTestClient[Litestar],
) -> None:
    page = await client.get("/app/signin")
    token = CSRF_FIELD.search(page.text)
    assert token
    response = await client.post(
        "/app/signin",
        data={"tenant": "demo", "email": OWNER[0], "password": OWNER[1], "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/app/inbox"
    set_cookie = response.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=lax" in set_cookie and "path=/" in set_cookie
    me = await client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["email"] == OWNER[0] and me.json()["role"] == "owner"
    # The admin key still works for machines, without any cookie.
    client.cookies.clear()
    assert (await client.get("/api/v1/inbox", headers=AUTH)).status_code == 200
    assert (await client.get("/api/v1/inbox")).status_code == 401


async def test_sign_in_without_csrf_token_is_forbidden(client: AsyncTestClient[Litestar]) -> None:
    await client.get("/app/signin")  # sets the double-submit cookie
    response = await client.post(
        "/app/signin",
        data={"tenant": "demo", "email": OWNER[0], "password": OWNER[1]},
        follow_redirects=False,
    )
    assert response.status_code == 403
    response = await client.post(
        "/app/signin",
        data={"tenant": "demo", "email": OWNER[0], "password": OWNER[1], "csrf_token": "forged"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert SESSION_COOKIE not in client.cookies


async def test_session_writes_need_the_csrf_header(client: AsyncTestClient[Litestar]) -> None:
    csrf = await sign_in(client, *OWNER)
    body = {"email": "new@demo.test", "role": "agent"}
    assert (await client.post("/api/v1/invitations", json=body)).status_code == 403
    wrong = await client.post("/api/v1/invitations", json=body, headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    ok = await client.post("/api/v1/invitations", json=body, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201, ok.text
    # Sign-out is a CSRF-checked form too.
    assert (await client.post("/app/signout", data={}, follow_redirects=False)).status_code == 403
    out = await client.post("/app/signout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_session_expires(runtime: Runtime, client: AsyncTestClient[Litestar]) -> None:
    await sign_in(client, *AGENT)
    clock = runtime.clock
    assert isinstance(clock, ManualClock)
    clock.advance(SESSION_TTL_S - 60)
    assert (await client.get("/api/v1/me")).status_code == 200
    clock.advance(61)
    assert (await client.get("/api/v1/me")).status_code == 401
    page = await client.get("/app/inbox", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/app/signin")


async def test_roles_an_agent_cannot_manage_people(client: AsyncTestClient[Litestar]) -> None:
    csrf = await sign_in(client, *AGENT)
    headers = {"X-CSRF-Token": csrf}
    users = await client.get("/api/v1/users")
    assert users.status_code == 200
    assert {u["email"] for u in users.json()["users"]} == {OWNER[0], AGENT[0], MARKETER[0]}
    assert "password_hash" not in users.text and "argon2" not in users.text
    invite = await client.post("/api/v1/invitations", json={"email": "x@demo.test"}, headers=headers)
    assert invite.status_code == 403
    # An agent answers conversations; creating leads or playbooks is not theirs.
    lead = await client.post("/api/v1/leads", json={"channel": "webchat"}, headers=headers)
    assert lead.status_code == 403
    assert 'id="invite-form"' not in (await client.get("/app/people")).text

    client.cookies.clear()
    csrf = await sign_in(client, *MARKETER)
    invite = await client.post(
        "/api/v1/invitations", json={"email": "x@demo.test"}, headers={"X-CSRF-Token": csrf}
    )
    assert invite.status_code == 403


async def test_invitation_link_signs_the_colleague_in_once(client: AsyncTestClient[Litestar]) -> None:
    csrf = await sign_in(client, *OWNER)
    response = await client.post(
        "/api/v1/invitations",
        json={"email": "Colleague@Demo.test", "role": "marketer"},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["sent"] is False  # the test tenant has no email channel configured
    path = re.sub(r"^https?://[^/]+", "", body["link"])
    assert path.startswith("/app/invite/")
    again = await client.post("/api/v1/invitations", json={"email": OWNER[0]}, headers={"X-CSRF-Token": csrf})
    assert again.status_code == 400

    client.cookies.clear()
    page = await client.get(path)
    assert page.status_code == 200 and "colleague@demo.test" in page.text
    token = CSRF_FIELD.search(page.text)
    assert token
    short = await client.post(path, data={"password": "short", "csrf_token": token.group(1)})
    assert short.status_code == 400
    accepted = await client.post(
        path,
        data={"password": "colleague-pass-1", "name": "Col", "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert accepted.status_code == 303
    me = (await client.get("/api/v1/me")).json()
    assert me["email"] == "colleague@demo.test" and me["role"] == "marketer"
    client.cookies.clear()
    assert (await client.get(path)).status_code == 404
    reuse = await client.post(path, data={"password": "colleague-pass-2", "csrf_token": token.group(1)})
    assert reuse.status_code in (400, 403)


async def test_refused_invitations_carry_a_code_and_the_invite_page_says_it_in_french(
    client: AsyncTestClient[Litestar],
) -> None:
    csrf = await sign_in(client, *OWNER)
    again = await client.post("/api/v1/invitations", json={"email": OWNER[0]}, headers={"X-CSRF-Token": csrf})
    assert again.status_code == 400
    assert again.json()["detail"] == "this email already has an account here"  # English for API users
    assert again.json()["extra"] == {"code": "account_exists", "params": {}}
    response = await client.post(
        "/api/v1/invitations", json={"email": "fr@demo.test"}, headers={"X-CSRF-Token": csrf}
    )
    path = re.sub(r"^https?://[^/]+", "", response.json()["link"])
    client.cookies.clear()
    client.cookies.set("lw_lang", "fr")
    page = await client.get(path)
    token = CSRF_FIELD.search(page.text)
    assert token
    short = await client.post(path, data={"password": "short", "csrf_token": token.group(1)})
    assert short.status_code == 400
    assert "un mot de passe compte au moins 10\u00a0caractères" in short.text, short.text
    assert "at least" not in short.text


async def test_language_follows_accept_language_then_the_readers_choice(
    client: AsyncTestClient[Litestar],
) -> None:
    french = await client.get("/app/signin", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert '<html lang="fr">' in french.text and "Se connecter" in french.text
    english = await client.get("/app/signin", headers={"Accept-Language": "de, en;q=0.8"})
    assert '<html lang="en">' in english.text
    token = CSRF_FIELD.search(english.text)
    assert token
    chosen = await client.post(
        "/app/language", data={"lang": "fr", "csrf_token": token.group(1)}, follow_redirects=False
    )
    assert chosen.status_code == 303
    assert "Se connecter" in (await client.get("/app/signin", headers={"Accept-Language": "en"})).text


def test_cli_creates_the_first_owner(tmp_path: os.PathLike[str]) -> None:
    env = {"LEADWARM_DATA_DIR": str(tmp_path), "STORE": "sqlite", "LOG_LEVEL": "WARNING"}
    runner = CliRunner()
    created = runner.invoke(cli, ["tenant", "create", "acme", "--name", "Acme"], env=env)
    assert created.exit_code == 0, created.output
    result = runner.invoke(
        cli,
        ["user", "create", "acme", "boss@acme.test", "--role", "owner"],
        env={**env, "LEADWARM_USER_PASSWORD": "boss-password-1"},
    )
    assert result.exit_code == 0, result.output
    assert "boss-password-1" not in result.output
    listed = runner.invoke(cli, ["user", "list", "acme"], env=env)
    assert "boss@acme.test\towner" in listed.output
    duplicate = runner.invoke(
        cli,
        ["user", "create", "acme", "boss@acme.test"],
        env={**env, "LEADWARM_USER_PASSWORD": "boss-password-1"},
    )
    assert duplicate.exit_code == 1
    missing = runner.invoke(
        cli, ["user", "create", "nope", "a@b.test"], env={**env, "LEADWARM_USER_PASSWORD": "x" * 12}
    )
    assert missing.exit_code == 1 and "does not exist" in missing.output


async def test_five_wrong_passwords_lock_the_account_for_a_while(
    runtime: Runtime, client: AsyncTestClient[Litestar]
) -> None:
    people = dashboard_people(runtime)
    for _ in range(MAX_FAILURES):
        assert await people.authenticate("demo", OWNER[0], "guess-guess-guess") is None
    assert await people.authenticate("demo", OWNER[0], OWNER[1]) is None  # locked
    clock = runtime.clock
    assert isinstance(clock, ManualClock)
    clock.advance(LOCKOUT_S + 1)
    user = await people.authenticate("demo", OWNER[0], OWNER[1])
    assert user is not None and user.email == OWNER[0]
    # A success resets the count: four more failures do not lock.
    for _ in range(MAX_FAILURES - 1):
        assert await people.authenticate("demo", OWNER[0], "guess-guess-guess") is None
    assert await people.authenticate("demo", OWNER[0], OWNER[1]) is not None
