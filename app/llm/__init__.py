"""GPT for LeadWarm: the structured turn analysis, its client, the GPT interpreter, usage and budget.

The guardrails (:mod:`app.llm.guardrails`) check every generated reply before it is used.
"""

from app.llm.analysis import TURN_ANALYSIS_SCHEMA, TurnAnalysis
from app.llm.budget import MonthlyBudget
from app.llm.client import LlmConfig, LlmError, TurnAnalyzer
from app.llm.interpreter import GptInterpreter
from app.llm.usage import TurnUsage, UsageLedger, add_to_totals

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
