"""What a French sales agent reads on the lead and conversation pages is French (a real Chromium):

- a turn stores the built-in scorer's reason code and parameters with its score event;
- the timeline's handoff events, the built-in scorer's reasons and their evidence, bookings and CRM
  sync entries in words (a playbook author's own reason, "Big budget", stays as written); a score
  event stored before reasons had codes reads in French too;
- the conversation page's outbound decisions in words ("Chat web · envoyé · envoyer · autorisé"), a
  deferred one with its reason ("heures calmes"); channels by their names, never their codes;
- the same pages in English keep the English words.

Screenshots go to tests/artifacts/ (``words-*.png``).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from playwright.sync_api import Page, expect

from app.store import collections as col
from tests.dashboard import test_browser as journeys
from tests.dashboard.conftest import OWNER
from tests.dashboard.test_browser import Tenant, shot, sign_in, start_lead
from tests.dashboard.test_polish_browser import to_french

browser = journeys.browser
server = journeys.server
tenant = journeys.tenant
page = journeys.page

#: Raw codes and the engine's English that must not show on a French page.
ENGLISH = re.compile(
    r"handoff\.requested|· playbook\b|Engagement: replied|replied after|or more messages|\bconfirmed\b"
    r"|\bsynced\b|circuit open|builtin|\(end\)|· (sent|send|allowed|defer|quiet_hours)\b|\bwebchat\b"
)


def _seed(tenant: Tenant, started: dict[str, Any]) -> None:
    """A booking, a CRM link with a deferred attempt, a deferred outbound decision, and a score
    event as stored before reasons had codes, for the lead ``started``."""
    rt, tid = tenant.server.runtime, tenant.id
    lead_id, conv_id = started["lead"]["id"], started["conversation_id"]
    now = time.time()

    async def seed() -> None:
        await rt.store.set(
            tid,
            col.BOOKINGS,
            "bk1",
            {
                "id": "bk1",
                "lead_id": lead_id,
                "conversation_id": conv_id,
                "status": "confirmed",
                "title": "Démo",
                "start": now + 86400,
                "end": now + 88200,
                "provider": "builtin",
                "reason": "",
                "created_at": now,
            },
        )
        await rt.store.set(
            tid,
            col.CRM_LINKS,
            "ln1",
            {
                "id": "ln1",
                "lead_id": lead_id,
                "connection_id": "hubspot-1",
                "provider": "hubspot",
                "status": "synced",
                "queued_at": now,
                "synced_at": now,
            },
        )
        await rt.store.set(
            tid,
            col.CRM_SYNC_LOGS,
            "lg1",
            {
                "id": "lg1",
                "lead_id": lead_id,
                "connection_id": "hubspot-1",
                "provider": "hubspot",
                "type": "upsert",
                "status": "deferred",
                "error": "circuit open",
                "attempt": 1,
                "at": now,
            },
        )
        outbox = await rt.store.query(tid, "outbox", limit=1)
        await rt.store.set(
            tid,
            "outbox",
            "ob-deferred",
            {
                **outbox[0].data,
                "message_id": "zz-deferred",
                "status": "pending",
                "decision": {
                    "action": "defer",
                    "reason": "quiet_hours",
                    "until": now + 3600,
                    "channel": "webchat",
                },
            },
        )
        conv = await rt.store.get(tid, col.CONVERSATIONS, conv_id)
        assert conv is not None
        legacy = {
            "at": now,
            "type": "score_changed",
            "detail": {
                "points": 5,
                "score": 70,
                "reason": "Engagement: 5 or more messages",
                "evidence": "6 messages",
            },
        }
        await rt.store.set(tid, col.CONVERSATIONS, conv_id, {"events": [*conv["events"], legacy]}, merge=True)

    tenant.server.call(seed())


def test_a_turn_stores_the_scorer_reason_code(tenant: Tenant) -> None:
    started = start_lead(tenant, f"Cy {uuid.uuid4().hex[:4]}", "5000")
    rt = tenant.server.runtime
    conv = tenant.server.call(rt.store.get(tenant.id, col.CONVERSATIONS, started["conversation_id"]))
    assert conv is not None
    scored = [e["detail"] for e in conv["events"] if e["type"] == "score_changed"]
    assert [(d["reason"], d.get("reason_code")) for d in scored] == [
        ("Engagement: replied within 5 minutes", "engagement.fast_reply"),
        ("Big budget", None),
    ]
    assert scored[0]["reason_params"]["minutes"] == 5


def test_the_lead_and_conversation_pages_speak_french(page: Page, tenant: Tenant) -> None:
    started = start_lead(tenant, f"Ana {uuid.uuid4().hex[:4]}", "5000")
    _seed(tenant, started)
    base = tenant.server.base
    sign_in(page, tenant, *OWNER)
    to_french(page)

    page.goto(f"{base}/app/leads/{started['lead']['id']}")
    timeline = page.locator("#timeline tbody")
    expect(timeline.locator("tr.k-handoff").first).to_be_attached()
    expect(timeline).to_contain_text("transfert demandé · par le scénario")
    expect(timeline).to_contain_text("Engagement\u00a0: réponse en moins de 5\u00a0minutes")
    expect(timeline).to_contain_text(re.compile(r"«\u00a0réponse après \d+\u00a0s\u00a0»"))
    expect(timeline).to_contain_text("Big budget")  # the author's own words, as written
    expect(timeline).to_contain_text("le bot passe la main · Hot lead")
    expect(timeline).to_contain_text(
        re.compile("transfert demandé · par le scénario · Hot lead · Étape du scénario\u00a0: ")
    )
    expect(timeline).to_contain_text("confirmé · Démo")
    expect(timeline).to_contain_text("agenda intégré")
    expect(timeline).to_contain_text("hubspot · écriture · reporté · en pause après des erreurs répétées")
    history = page.locator("#score-history tbody")
    expect(history).to_contain_text("Engagement\u00a0: 5\u00a0messages ou plus")  # stored without a code
    expect(history).to_contain_text("6\u00a0messages")
    expect(page.locator("#crm")).to_contain_text("synchronisé")
    expect(page.locator("#bookings")).to_contain_text("confirmé")
    page.wait_for_load_state("networkidle")
    text = page.locator("main").inner_text()
    assert not ENGLISH.search(text), ENGLISH.findall(text)
    shot(page, "words-lead-fr")

    page.goto(f"{base}/app/conversations/{started['conversation_id']}")
    decisions = page.locator("#decisions")
    expect(decisions).to_contain_text("Chat web · envoyé · envoyer · autorisé")
    expect(decisions).to_contain_text(
        re.compile(r"en attente d'envoi · envoyer plus tard · heures calmes · jusqu'au \S+")
    )
    expect(page.locator("#handback-step option[value=bye]")).to_have_text("bye (fin)")
    reasons = page.locator("#reasons")
    expect(reasons).to_contain_text("+5 Engagement\u00a0: réponse en moins de 5\u00a0minutes")
    expect(reasons).to_contain_text("Big budget")
    page.wait_for_load_state("networkidle")
    text = page.locator("main").inner_text()
    assert not ENGLISH.search(text), ENGLISH.findall(text)
    shot(page, "words-conversation-fr")


def test_the_same_pages_in_english(page: Page, tenant: Tenant) -> None:
    started = start_lead(tenant, f"Ben {uuid.uuid4().hex[:4]}", "5000")
    _seed(tenant, started)
    sign_in(page, tenant, *OWNER)
    page.goto(f"{tenant.server.base}/app/leads/{started['lead']['id']}")
    timeline = page.locator("#timeline tbody")
    expect(timeline).to_contain_text("handoff requested · by the playbook")
    expect(timeline).to_contain_text("Engagement: replied within 5 minutes")
    expect(page.locator("#score-history tbody")).to_contain_text("Engagement: 5 or more messages")
    page.goto(f"{tenant.server.base}/app/conversations/{started['conversation_id']}")
    expect(page.locator("#decisions")).to_contain_text("Web chat · sent · send · allowed")
    expect(page.locator("#decisions")).to_contain_text("send later · quiet hours · until")


def test_refusals_read_in_the_pages_language(page: Page, tenant: Tenant) -> None:
    sign_in(page, tenant, *OWNER)
    to_french(page)
    page.get_by_role("link", name="Paramètres").click()
    errors = page.locator("#settings-errors")
    zone = page.get_by_label("Fuseau horaire")
    expect(zone).not_to_have_value("")
    zone.fill("Mars/Olympus")
    page.get_by_role("button", name="Enregistrer").click()
    expect(errors).to_have_text(
        "Fuseau horaire\u00a0: fuseau horaire inconnu «\u00a0Mars/Olympus\u00a0» (un nom IANA comme Europe/Paris)"
    )
    expect(zone).to_have_attribute("aria-invalid", "true")
    zone.fill("Europe/Paris")
    page.get_by_label("Pays des numéros (code ISO)").fill("ZZ")
    page.get_by_label("Messages par prospect et par jour (plafond)").fill("0")
    page.get_by_role("button", name="Enregistrer").click()
    expect(errors).to_contain_text(
        "Pays des numéros (code ISO)\u00a0: «\u00a0ZZ\u00a0» n'est pas un code de pays (ISO 3166, ex. FR, US)"
    )
    expect(errors).to_contain_text(
        "Messages par prospect et par jour (plafond)\u00a0: doit valoir au moins 1"
    )
    shot(page, "words-settings-errors-fr")

    page.get_by_role("link", name="Import CSV").click()
    page.get_by_label("Fichier CSV").set_input_files(
        {"name": "sans.csv", "mimeType": "text/csv", "buffer": b"name,email\nZoe,zoe@example.com\n"}
    )
    page.get_by_role("button", name="Importer", exact=True).click()
    expect(page.locator("#import-error")).to_have_text(
        "Une erreur est survenue\u00a0: le fichier doit avoir une colonne «\u00a0consent\u00a0»"
        " (yes/no pour chaque prospect)"
    )


def test_the_simulator_speaks_french(page: Page, tenant: Tenant) -> None:
    sign_in(page, tenant, *OWNER)
    to_french(page)
    page.goto(f"{tenant.server.base}/app/playbooks/editor")
    expect(page.locator("#pb-status")).to_contain_text("Valide")
    page.get_by_label("Langue de la conversation").select_option("fr")
    page.locator("#sim-start-button").click()
    expect(page.locator("#sim-feed")).to_contain_text("Quel est votre budget ?")
    page.locator("#sim-text").fill("2000")
    page.locator("#sim-send").click()
    reasons = page.locator("#sim-reasons li")
    expect(reasons).to_have_text(
        ["+5 Engagement\u00a0: réponse en moins de 5\u00a0minutes", "+50 Budget confortable"]
    )
    expect(page.locator("#sim-feed")).to_contain_text("Engagement\u00a0: réponse en moins de 5\u00a0minutes")
    expect(page.locator("#sim-state")).to_have_text(re.compile("^État\u00a0: en attente"))


def test_analytics_and_integrations_in_french(page: Page, tenant: Tenant) -> None:
    start_lead(tenant, f"Dee {uuid.uuid4().hex[:4]}", "5000")
    sign_in(page, tenant, *OWNER)
    to_french(page)
    page.goto(f"{tenant.server.base}/app/analytics")
    expect(page.locator("main")).to_contain_text(re.compile(r"Score moyen\s*65,0"))
    page.goto(f"{tenant.server.base}/app/integrations")
    catalog = page.locator("#catalog-table tbody")
    expect(catalog).to_contain_text("Boîte mail (SMTP / IMAP)")
    expect(catalog).to_contain_text("Webhook sortant")
    expect(catalog).not_to_contain_text(re.compile("Mailbox|Outgoing"))
    row = page.locator("#catalog-table tbody tr", has_text="Boîte mail")
    row.get_by_text("Connecter avec une clé").click()
    expect(row.get_by_label("Serveur SMTP", exact=True)).to_be_visible()
    expect(row.get_by_label("Port SMTP (facultatif)")).to_be_visible()
    expect(row).not_to_contain_text(re.compile(r"smtp_host|\(optional\)"))
    cal = page.locator("#catalog-table tbody tr", has_text="Cal.com")
    cal.get_by_text("Connecter avec une clé").click()
    expect(cal.get_by_label("Clé d'API", exact=True)).to_be_visible()
    expect(cal.get_by_label("URL de base de l'API (facultatif)")).to_be_visible()
    # a refusal of the integrations API in French, its field by its French name
    cal.get_by_label("Clé d'API", exact=True).fill("   ")  # passes `required`, dropped as blank
    cal.get_by_role("button", name="Connecter Cal.com").click()
    expect(page.locator("main")).to_contain_text("«\u00a0Clé d'API\u00a0» est obligatoire")
    expect(page.locator("main")).not_to_contain_text("is required")
    # a connection's status in French
    cal.get_by_label("Clé d'API", exact=True).fill("cal_test_key")
    cal.get_by_role("button", name="Connecter Cal.com").click()
    expect(page.locator("main")).to_contain_text("Connecté\u00a0: Cal.com")
    connections = page.locator("#connections-table tbody")
    expect(connections).to_contain_text("Cal.com")
    expect(connections.locator(".badge")).to_have_text("active")
    shot(page, "words-integrations-fr")
