"""GPT for LeadWarm: the structured turn analysis, its client, the GPT interpreter, usage and budget.

The guardrails (:mod:`app.ai.llm.guardrails`) check every generated reply before it is used.
"""

from app.ai.llm.analysis import TURN_ANALYSIS_SCHEMA, TurnAnalysis
from app.ai.llm.budget import MonthlyBudget
from app.ai.llm.client import LlmConfig, LlmError, TurnAnalyzer
from app.ai.llm.interpreter import GptInterpreter
from app.ai.llm.usage import TurnUsage, UsageLedger, add_to_totals

__all__ = [
    "TURN_ANALYSIS_SCHEMA",
    "GptInterpreter",
    "LlmConfig",
    "LlmError",
    "MonthlyBudget",
    "TurnAnalysis",
    "TurnAnalyzer",
    "TurnUsage",
    "UsageLedger",
    "add_to_totals",
]
