"""Prompt size of the GPT turn analysis, and how much of it the provider's prompt cache can serve.

Renders the real prompt (:func:`app.ai.llm.interpreter.build_prompt`) for a scripted 8-turn conversation
through the shipped ``solar-qualification-en`` playbook, with the demo tenant's brand memory and
knowledge base, and measures each turn's prompt.

Tokens are ESTIMATED, not counted: ``ceil(characters / 4)``, OpenAI's rule of thumb for English text
(https://help.openai.com/en/articles/4936856). A real tokenizer (tiktoken) would download its encodings
at runtime, which this project does not allow; the estimate is within about 10-20 % for English prose
and lower than the truth for French and JSON-heavy text. The cache model is OpenAI's
(https://platform.openai.com/docs/guides/prompt-caching): prefixes of 1024 tokens or more are cached,
in steps of 128 tokens, from the second request on.

Usage: ``python benchmarks/llm.py`` or ``bench_prompt_tokens()`` from ``benchmarks/run.py``.
"""

from __future__ import annotations

import math
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

__all__ = ["CONVERSATION", "bench_prompt_tokens", "estimate_tokens"]

#: (lead's message, slots it fills); the bot's question for the current step comes from the playbook.
CONVERSATION: list[tuple[str, dict[str, Any]]] = [
    ("Hi! We own our house near Lyon and want to cut our electricity bill with solar", {"homeowner": True}),
    ("it's usually around two hundred euros, more in winter", {"monthly_bill": 200.0}),
    ("Old clay tiles, facing south. How long does the installation take?", {"roof_type": "pitched_tiles"}),
    ("Do you offer financing? We'd rather pay monthly.", {}),
    ("ideally before the summer, we're keen to get going", {"timeline": "asap"}),
    ("It's 69003, in Lyon", {"postcode": "69003"}),
    ("camille dot martin at example dot com", {"email": "camille.martin@example.com"}),
    ("tomorrow around 10 in the morning works", {"callback_time": "2026-11-24T10:00:00+01:00"}),
]
_CACHE_MIN_TOKENS = 1024
_CACHE_STEP = 128


def estimate_tokens(text: str) -> int:
    """Estimated tokens of ``text``: ``ceil(characters / 4)`` (see the module docstring)."""
    return math.ceil(len(text) / 4)


def _cached(static_tokens: int) -> int:
    if static_tokens < _CACHE_MIN_TOKENS:
        return 0
    return (static_tokens // _CACHE_STEP) * _CACHE_STEP


def bench_prompt_tokens() -> list[str]:
    """Lines ``name: value unit`` for the scripted 8-turn conversation (see the module docstring)."""
    from app.ai.knowledge.demo import DEMO_AI_CONFIG, DEMO_QA
    from app.ai.llm.interpreter import brand_view, build_prompt, static_knowledge
    from playbooks import load_library, new_state
    from playbooks.runtime import AskContext, ChoiceOption
    from playbooks.schema import AskStep, pick_language

    playbook = load_library()["solar-qualification-en"]
    brand = brand_view(DEMO_AI_CONFIG, default_company="demo")
    state = new_state(playbook, language="en", lead={"first_name": "Camille"})
    asks = [s for s in playbook.steps if isinstance(s, AskStep)]
    history: list[dict[str, str]] = []
    now = 1_795_000_000.0
    totals: list[int] = []
    statics: list[int] = []
    systems: set[str] = set()
    static_bytes = total_bytes = 0
    for text, fills in CONVERSATION:
        pending = next((s for s in asks if s.slot not in state.slots), None)
        ask = None
        if pending is not None:
            question = pick_language(pending.question, "en")
            ask = AskContext(
                step_id=pending.id,
                slot=pending.slot,
                kind=pending.kind,
                question=question,
                choices=[ChoiceOption(id=c.id, title=pick_language(c.title, "en")) for c in pending.choices],
            )
            history.append({"role": "bot", "text": question})
        open_slots = {k: v for k, v in playbook.slot_kinds().items() if k not in state.slots}
        prompt = build_prompt(
            tenant_id="demo",
            brand=brand,
            playbook=playbook,
            knowledge=static_knowledge(DEMO_QA, "en"),
            state=state,
            ask=ask,
            open_slots=open_slots,
            text=text,
            now=now,
            timezone="Europe/Paris",
            history=history[-6:],
        )
        systems.add(prompt.system)
        static, whole = estimate_tokens(prompt.system), estimate_tokens(prompt.system + prompt.user)
        statics.append(static)
        totals.append(whole)
        static_bytes += len(prompt.system.encode())
        total_bytes += len((prompt.system + prompt.user).encode())
        history.append({"role": "lead", "text": text})
        state.slots.update(fills)
        now += 60
    cached_after_first = sum(_cached(s) for s in statics[1:])
    prompt_after_first = sum(totals[1:])
    turns = len(CONVERSATION)
    return [
        f"llm_prompt_tokens_per_turn_mean: {statistics.mean(totals):.0f} tokens",
        f"llm_prompt_tokens_per_turn_max: {max(totals)} tokens",
        f"llm_static_prefix_tokens: {statics[0]} tokens",
        f"llm_static_prefix_share_tokens: {100 * sum(statics) / sum(totals):.1f} %",
        f"llm_static_prefix_share_bytes: {100 * static_bytes / total_bytes:.1f} %",
        f"llm_static_prefix_identical_turns: {turns - len(systems) + 1} turns",
        f"llm_turns_measured: {turns} turns",
        f"llm_cached_prompt_share_turns_2_{turns}: {100 * cached_after_first / prompt_after_first:.1f} %",
    ]


if __name__ == "__main__":
    for line in bench_prompt_tokens():
        print(line)
