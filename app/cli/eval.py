"""``leadwarm eval``: measure how well LeadWarm understands leads, on the labelled sets in the repo.

Three measures, each printed per split (``dev``: what the rules were tuned on; ``heldout``,
``heldout2``: written afterwards and only measured) and for ``all``:

- the **offline path** (default): :class:`playbooks.interpret.RuleInterpreter` on
  ``playbooks/eval/*.yaml`` through :func:`playbooks.evaluation.run_eval`: accuracy per slot kind,
  per intent, multi-answer messages, questions stored as answers;
- the **model path** (``--model``): the app's :class:`app.ai.llm.interpreter.GptInterpreter`, built
  the way :meth:`app.ai.directory.InterpreterDirectory.for_lead` builds it, over a throwaway
  in-memory SQLite store holding the shipped playbooks and the demo knowledge base, with a clock
  set to the case's ``now`` and the case's time zone and region; it calls the model at
  ``OPENAI_BASE_URL`` with ``OPENAI_API_KEY`` (a real model, or a scripted server in tests). Turns
  the model could not answer (timeout, 429, malformed output...) are answered by the offline
  fallback, as in production; they are counted and printed (``model fallbacks``) so that a model
  figure is never an offline figure in disguise;
- **knowledge retrieval** (``--knowledge``): :func:`app.ai.knowledge.evaluation.measure_knowledge`
  on ``app/ai/knowledge/eval/*.yaml``: precision, recall and false answers at several thresholds.

``--failures`` lists the wrong cases; ``--json`` prints one JSON document instead of text.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from app.cli.main import main

if TYPE_CHECKING:  # the command imports the app lazily, so that `leadwarm --help` stays quick
    from app.core.settings import Settings
    from playbooks.evaluation import EvalSetting
    from playbooks.runtime import AskContext, ConversationState, Interpretation, Interpreter

__all__ = ["EVAL_TENANT", "ModelPath", "eval_command", "model_path"]

EVAL_TENANT = "eval"
"""The tenant id of the throwaway store the model path runs in."""


class _Cached:
    """An ``Interpreter`` that remembers its answers by message and question, so that the ``all``
    report (which reads every case again) costs no second model call. Counts model fallbacks."""

    def __init__(self, build: Callable[[], Awaitable[Interpreter]], fallbacks: Counter[str]) -> None:
        self._build = build
        self._inner: Interpreter | None = None
        self._seen: dict[tuple[object, ...], Interpretation] = {}
        self._fallbacks = fallbacks

    async def interpret(
        self,
        *,
        text: str,
        choice_id: str | None,
        ask: AskContext | None,
        open_slots: dict[str, str],
        state: ConversationState,
    ) -> Interpretation:
        """The inner interpreter's reading, asked once per distinct (message, question, state)."""
        key = (
            text,
            choice_id,
            ask.step_id if ask is not None else None,
            tuple(sorted(open_slots)),
            state.playbook_id,
            state.language,
        )
        if key not in self._seen:
            if self._inner is None:
                self._inner = await self._build()
            result = await self._inner.interpret(
                text=text, choice_id=choice_id, ask=ask, open_slots=open_slots, state=state
            )
            usage = getattr(self._inner, "last_usage", None)
            reason = getattr(usage, "fallback", None)
            self._fallbacks["turns"] += 1
            if reason:
                self._fallbacks[str(reason)] += 1
            self._seen[key] = result
        return self._seen[key]


class ModelPath:
    """What :func:`model_path` yields: ``make_interpreter`` for :func:`playbooks.evaluation.run_eval`
    and ``fallbacks`` (``turns``: model turns asked; any other key: a fallback reason -> count)."""

    def __init__(
        self, make_interpreter: Callable[[EvalSetting], Interpreter], fallbacks: Counter[str]
    ) -> None:
        self.make_interpreter = make_interpreter
        self.fallbacks = fallbacks

    @property
    def fallback_count(self) -> int:
        """Turns the offline fallback answered instead of the model."""
        return sum(n for reason, n in self.fallbacks.items() if reason != "turns")


@asynccontextmanager
async def model_path(settings: Settings) -> AsyncIterator[ModelPath]:
    """The model path of the evaluation, over a throwaway in-memory store.

    ``settings``: :class:`app.core.settings.Settings` (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``,
    ``OPENAI_MODEL``, the LLM deadlines). Raises :class:`click.UsageError` when no key is set.
    The store holds the shipped playbooks (``playbooks/library``), the demo knowledge base and
    ``aiConfig``; one :class:`~app.ai.directory.InterpreterDirectory` is built per evaluation
    ``now`` (a :class:`kernel.clock.ManualClock` at it) and closed on exit.
    """
    from app.ai.directory import InterpreterDirectory
    from app.ai.knowledge.demo import DEMO_AI_CONFIG, DEMO_QA
    from app.ai.knowledge.repository import KnowledgeRepository
    from app.ai.llm.client import LlmConfig
    from app.authoring.repository import PlaybookRepository
    from app.store import collections as col
    from app.store.sqlite import SQLiteStore
    from kernel.clock import ManualClock
    from playbooks import LIBRARY_DIR
    from playbooks.evaluation import EVAL_NOW

    config = LlmConfig.from_settings(settings)
    if config is None:
        raise click.UsageError("--model needs OPENAI_API_KEY (and OPENAI_BASE_URL for a compatible server)")
    store = SQLiteStore(":memory:")
    setup_clock = ManualClock(EVAL_NOW)
    playbooks = PlaybookRepository(store, setup_clock)
    knowledge = KnowledgeRepository(store, setup_clock)
    for path in sorted(LIBRARY_DIR.glob("*.yaml")):
        await playbooks.save(EVAL_TENANT, path.read_text(encoding="utf-8"), origin=path.name)
    await knowledge.save(EVAL_TENANT, list(DEMO_QA))
    await store.set(EVAL_TENANT, col.AI_CONFIG, "default", dict(DEMO_AI_CONFIG))
    directories: dict[float, InterpreterDirectory] = {}
    fallbacks: Counter[str] = Counter()

    def directory(now: float) -> InterpreterDirectory:
        if now not in directories:
            directories[now] = InterpreterDirectory(
                knowledge, clock=ManualClock(now), store=store, playbooks=playbooks, llm=config
            )
        return directories[now]

    interpreters: dict[EvalSetting, _Cached] = {}

    def make_interpreter(setting: EvalSetting) -> Interpreter:
        async def build() -> Interpreter:
            return await directory(setting.now).for_lead(
                EVAL_TENANT, timezone=setting.timezone, default_region=setting.default_region
            )

        if setting not in interpreters:  # one per setting, so its answers are reused across reports
            interpreters[setting] = _Cached(build, fallbacks)
        return interpreters[setting]

    try:
        yield ModelPath(make_interpreter, fallbacks)
    finally:
        for item in directories.values():
            await item.aclose()
        await store.close()


def _splits() -> list[str]:
    from playbooks.evaluation import EVAL_DIR

    return sorted(p.stem for p in EVAL_DIR.glob("*.yaml"))


async def _understanding(*, model: bool, split: str | None, paths: list[Path] | None) -> dict[str, Any]:
    from playbooks.evaluation import run_eval

    if not model:
        return {"path": "offline", "reports": await run_eval(split=split, paths=paths), "fallbacks": None}
    from app.core.settings import Settings

    async with model_path(Settings()) as path:
        reports = await run_eval(make_interpreter=path.make_interpreter, split=split, paths=paths)
        return {"path": "model", "reports": reports, "fallbacks": dict(path.fallbacks)}


def _print_understanding(outcome: dict[str, Any], *, failures: bool, as_json: bool) -> None:
    reports = outcome["reports"]
    fallbacks = outcome["fallbacks"]
    if as_json:
        doc: dict[str, Any] = {"path": outcome["path"], "splits": {}}
        for name, report in reports.items():
            doc["splits"][name] = report.to_dict()
            if failures:
                doc["splits"][name]["failed_cases"] = report.failures
        if fallbacks is not None:
            doc["model_turns"] = fallbacks.get("turns", 0)
            doc["model_fallbacks"] = {k: v for k, v in fallbacks.items() if k != "turns"}
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2, default=str))
        return
    click.echo(f"path: {outcome['path']}")
    for name, report in reports.items():
        click.echo(f"\n== {name} ==")
        click.echo(report.format(failures=failures))
    if fallbacks is not None:
        reasons = {k: v for k, v in fallbacks.items() if k != "turns"}
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items())) or "none"
        click.echo(f"\nmodel turns: {fallbacks.get('turns', 0)}, fallbacks to offline: {detail}")


def _print_knowledge(split: str | None, *, failures: bool, as_json: bool) -> None:
    from app.ai.knowledge.evaluation import measure_knowledge

    reports = measure_knowledge(split=split)
    if as_json:
        click.echo(
            json.dumps(
                {name: r.to_dict(failures=failures) for name, r in reports.items()},
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    for name, report in reports.items():
        click.echo(f"== knowledge: {name} ==")
        click.echo(report.format(failures=failures))
        click.echo("")


@main.command("eval")
@click.option(
    "--model", is_flag=True, help="Measure the model path (needs OPENAI_API_KEY) instead of the offline one."
)
@click.option(
    "--knowledge", is_flag=True, help="Measure knowledge-base retrieval instead of slots and intents."
)
@click.option(
    "--split", default=None, help="Only this labelled set (e.g. dev, heldout); default: every set and all."
)
@click.option(
    "--cases",
    "case_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Labelled set(s) to read instead of playbooks/eval/*.yaml (same format; split = file name).",
)
@click.option("--failures", is_flag=True, help="List the cases that went wrong.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text.")
def eval_command(
    model: bool,
    knowledge: bool,
    split: str | None,
    case_files: tuple[Path, ...],
    failures: bool,
    as_json: bool,
) -> None:
    """Print accuracy per slot kind and per intent on the labelled sets (offline path by default).

    Exit status 2 for a bad option (an unknown split, --model without OPENAI_API_KEY).
    """
    if model and knowledge:
        raise click.UsageError("--knowledge measures retrieval only; drop --model")
    if knowledge:
        from app.ai.knowledge.evaluation import knowledge_splits

        if split is not None and split not in knowledge_splits():
            raise click.UsageError(
                f"unknown split {split!r}; knowledge sets: {', '.join(knowledge_splits())}"
            )
        _print_knowledge(split, failures=failures, as_json=as_json)
        return
    paths = list(case_files) or None
    known = sorted(p.stem for p in paths) if paths else _splits()
    if split is not None and split not in known:
        raise click.UsageError(f"unknown split {split!r}; labelled sets: {', '.join(known)}")
    try:
        outcome = asyncio.run(_understanding(model=model, split=split, paths=paths))
    except ValueError as exc:  # a malformed labelled set, or one naming an unknown playbook/step
        raise click.ClickException(str(exc)) from exc
    _print_understanding(outcome, failures=failures, as_json=as_json)
    sys.stdout.flush()
