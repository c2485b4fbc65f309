"""benchmarks/ingest_cpu.py drives the app in process: its signed WhatsApp and Twilio webhooks are
answered 200 and stored (``drive`` raises on any other answer), so a change to either channel's
hot path is measured on requests the app really takes."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from app.core.settings import Settings
from app.main import create_app
from benchmarks.ingest_cpu import _BASE_URL, _PATHS, _lifespan, _signed, drive
from benchmarks.run import PHONE_ID, SECRET, TWILIO_NUMBER


@pytest.mark.parametrize("channel", ["whatsapp", "twilio"])
async def test_the_harness_webhooks_are_stored(tmp_path: Path, channel: str) -> None:
    settings = Settings(
        _env_file=None,
        leadwarm_data_dir=tmp_path,
        admin_api_key=SecretStr("lw_bench"),
        whatsapp_token=SecretStr("x"),
        whatsapp_phone_id=PHONE_ID,
        whatsapp_app_secret=SecretStr(SECRET),
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token=SecretStr(SECRET),
        twilio_phone_number=TWILIO_NUMBER,
        public_base_url=_BASE_URL,
        log_level="WARNING",
    )
    app = create_app(settings=settings, start_worker=False, freeze_heap=False)
    runtime = app.dependencies["runtime"].dependency()

    async def run() -> int:
        await drive(app, _PATHS[channel], _signed(channel, range(20)), 4)
        return await runtime.store.log_size()

    assert await _lifespan(app, run) == 20
