"""The tenant's knowledge base: offline retrieval of answers to off-script questions, and a demo base."""

from app.ai.knowledge.retrieval import (
    DEFAULT_MIN_SCORE,
    KnowledgeIndex,
    Match,
    QAEntry,
    looks_like_question,
)

__all__ = ["DEFAULT_MIN_SCORE", "KnowledgeIndex", "Match", "QAEntry", "looks_like_question"]
