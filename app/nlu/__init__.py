"""Offline natural-language helpers the bot uses without an LLM (language detection)."""

from app.nlu.language import detect_language

__all__ = ["detect_language"]
