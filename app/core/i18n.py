"""The bot's own strings (not the tenant's playbook texts), in English and French.

French uses vouvoiement. :func:`text` picks the lead's language and falls back to English; strings
may hold ``str.format`` placeholders filled from keyword arguments.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DEFAULT_LANGUAGE", "MESSAGES", "MessageKey", "supported_languages", "text"]

DEFAULT_LANGUAGE = "en"


class MessageKey(StrEnum):
    """Names of the bot's own messages."""

    FALLBACK = "fallback"
    """No playbook step or knowledge-base answer fits the lead's message."""
    UNSUPPORTED_MESSAGE = "unsupported_message"
    """The lead sent a photo, voice note, video, sticker, location...; we only read text."""
    HANDOFF_NOTICE = "handoff_notice"
    """The conversation is handed to a human."""
    REACTION_ACK = "reaction_ack"
    """Answer to an emoji reaction: empty, meaning "send nothing"."""
    AFTER_END = "after_end"
    """The lead writes again after the playbook has ended."""
    CHAT_WELCOME = "chat_welcome"
    """First message of the web chat widget. Placeholder: ``company_name``."""
    INVALID_ANSWER = "invalid_answer"
    """Generic re-ask when an answer does not fit the step (e.g. not one of the options)."""
    HELP = "help"
    """Answer to the HELP / AIDE keyword. Placeholder: ``company_name``."""
    RESUBSCRIBED = "resubscribed"
    """Answer to START / UNSTOP after an opt-out."""
    HANDOFF_NEXT = "handoff_next"
    """What happens after a handoff, in office hours. Placeholders: ``delay``, ``hours``."""
    HANDOFF_NEXT_CLOSED = "handoff_next_closed"
    """What happens after a handoff, out of office hours. Placeholders: ``hours``, ``reopen``."""
    HANDOFF_CALL_BACK = "handoff_call_back"
    """The lead asked to be called back, in office hours. Placeholders: ``phone``, ``delay``, ``hours``."""
    HANDOFF_CALL_BACK_CLOSED = "handoff_call_back_closed"
    """The lead asked to be called back, out of office hours. Placeholders: ``phone``, ``hours``,
    ``reopen``."""
    HANDOFF_CALL_BACK_NUMBER = "handoff_call_back_number"
    """The lead asked to be called back and we know no number: which one?"""
    HANDOFF_NUMBER_NOTED = "handoff_number_noted"
    """The lead gave the number to call back on; followed by :attr:`HANDOFF_CALL_BACK`."""
    HANDOFF_NUMBER_AGAIN = "handoff_number_again"
    """A call-back waits for the lead's number and their reply gave none: asked again, once."""
    HANDOFF_NUMBER_AGAIN_WHEN = "handoff_number_again_when"
    """As :attr:`HANDOFF_NUMBER_AGAIN`, the reply giving a time to call. Placeholder: ``when`` (the
    lead's words, quoted)."""
    HANDOFF_NUMBER_WHICH = "handoff_number_which"
    """As :attr:`HANDOFF_NUMBER_AGAIN`, the reply asking which number is meant."""
    HANDOFF_TIMEOUT = "handoff_timeout"
    """Nobody answered a handoff in time: apology and a call-back offer. Placeholder: ``callback``."""
    HANDOFF_CALL_BACK_TIMEOUT = "handoff_call_back_timeout"
    """Nobody called back in time a lead who asked for it: apology and when we will. Placeholders:
    ``phone``, ``callback``."""


#: ``MESSAGES[key][language]``; every key has an English text.
MESSAGES: dict[MessageKey, dict[str, str]] = {
    MessageKey.FALLBACK: {
        "en": "Thanks for your message! A member of our team will get back to you shortly.",
        "fr": "Merci pour votre message ! Un membre de notre équipe vous répondra très prochainement.",
    },
    MessageKey.UNSUPPORTED_MESSAGE: {
        "en": "Thanks! We received your message, but for now we can only read text. "
        "Could you write your message instead?",
        "fr": "Merci ! Nous avons bien reçu votre message, mais pour le moment nous ne pouvons lire que "
        "du texte. Pourriez-vous nous écrire votre message ?",
    },
    MessageKey.HANDOFF_NOTICE: {
        "en": "I'm passing you to a member of our team, who will continue the conversation here shortly.",
        "fr": "Je transmets votre demande à un membre de notre équipe, qui va poursuivre la conversation "
        "ici très prochainement.",
    },
    MessageKey.REACTION_ACK: {
        "en": "",
        "fr": "",
    },
    MessageKey.AFTER_END: {
        "en": "Thanks! We have your details and a member of our team will be in touch. "
        "Feel free to write here if you have any other question.",
        "fr": "Merci ! Nous avons bien vos informations et un membre de notre équipe va vous recontacter. "
        "N'hésitez pas à nous écrire ici si vous avez une autre question.",
    },
    MessageKey.CHAT_WELCOME: {
        "en": "Hi! 👋 Welcome to {company_name}. How can we help you today?",
        "fr": "Bonjour ! 👋 Bienvenue chez {company_name}. Comment pouvons-nous vous aider ?",
    },
    MessageKey.HELP: {
        "en": "{company_name}: you are chatting with our assistant about your project. "
        "Reply STOP to stop receiving messages, START to receive them again.",
        "fr": "{company_name} : vous échangez avec notre assistant au sujet de votre projet. "
        "Répondez STOP pour ne plus recevoir de messages, START pour les recevoir à nouveau.",
    },
    MessageKey.RESUBSCRIBED: {
        "en": "You will receive our messages again. Reply STOP at any time to stop.",
        "fr": "Vous recevrez à nouveau nos messages. Répondez STOP à tout moment pour les arrêter.",
    },
    MessageKey.HANDOFF_NEXT: {
        "en": "A member of our team will answer you here within {delay}. Our hours: {hours}.",
        "fr": "Un membre de notre équipe vous répondra ici d'ici {delay}. Nos horaires : {hours}.",
    },
    MessageKey.HANDOFF_NEXT_CLOSED: {
        "en": "Our team is away right now; a member of the team will answer you here {reopen}. "
        "Our hours: {hours}.",
        "fr": "Notre équipe est absente pour le moment ; un conseiller vous répondra ici {reopen}. "
        "Nos horaires : {hours}.",
    },
    MessageKey.HANDOFF_CALL_BACK: {
        "en": "A member of our team will call you back on {phone} within {delay}. Our hours: {hours}.",
        "fr": "Un membre de notre équipe vous rappellera au {phone} d'ici {delay}. Nos horaires : {hours}.",
    },
    MessageKey.HANDOFF_CALL_BACK_CLOSED: {
        "en": "Our team is away right now; a member of the team will call you back on {phone} {reopen}. "
        "Our hours: {hours}.",
        "fr": "Notre équipe est absente pour le moment ; un conseiller vous rappellera au {phone} {reopen}. "
        "Nos horaires : {hours}.",
    },
    MessageKey.HANDOFF_CALL_BACK_NUMBER: {
        "en": "Of course, a member of our team will call you back. What number can we reach you on?",
        "fr": "Bien sûr, un membre de notre équipe va vous rappeler. À quel numéro pouvons-nous vous "
        "joindre ?",
    },
    MessageKey.HANDOFF_NUMBER_NOTED: {
        "en": "Thanks, I've noted your number.",
        "fr": "Merci, j'ai noté votre numéro.",
    },
    MessageKey.HANDOFF_NUMBER_AGAIN: {
        "en": "Sorry, I couldn't find a phone number in your message. What number can we call you on?",
        "fr": "Pardon, je n'ai pas trouvé de numéro de téléphone dans votre message. À quel numéro "
        "pouvons-nous vous joindre ?",
    },
    MessageKey.HANDOFF_NUMBER_AGAIN_WHEN: {
        "en": "Noted, I'll pass “{when}” on to the team. What number can we call you on?",
        "fr": "C'est noté, je transmets « {when} » à l'équipe. À quel numéro pouvons-nous vous joindre ?",
    },
    MessageKey.HANDOFF_NUMBER_WHICH: {
        "en": "Your phone number, so that a member of our team can call you back (your mobile, for "
        "example). What is it?",
        "fr": "Votre numéro de téléphone, pour qu'un membre de notre équipe puisse vous rappeler (votre "
        "portable, par exemple). Quel est-il ?",
    },
    MessageKey.HANDOFF_TIMEOUT: {
        "en": "Sorry for the wait: nobody from our team has been able to answer you yet. Could we call "
        "you back {callback}? If another time suits you better, just reply with it.",
        "fr": "Désolé pour l'attente : personne de notre équipe n'a encore pu vous répondre. Pouvons-nous "
        "vous rappeler {callback} ? Si un autre moment vous convient mieux, répondez-nous simplement.",
    },
    MessageKey.HANDOFF_CALL_BACK_TIMEOUT: {
        "en": "Sorry for the wait: our team has not been able to call you back yet. We will call you on "
        "{phone} {callback}. If another time or number suits you better, just reply with it.",
        "fr": "Désolé pour l'attente : notre équipe n'a pas encore pu vous rappeler. Nous vous appellerons "
        "au {phone} {callback}. Si un autre moment ou un autre numéro vous convient mieux, répondez-nous "
        "simplement.",
    },
    MessageKey.INVALID_ANSWER: {
        "en": "Sorry, I didn't quite get that. Could you answer again?",
        "fr": "Désolé, je n'ai pas bien compris. Pourriez-vous répondre à nouveau ?",
    },
}


def supported_languages() -> list[str]:
    """Languages every message is written in."""
    return sorted(set.intersection(*(set(texts) for texts in MESSAGES.values())))


def text(key: MessageKey | str, language: str | None, **params: object) -> str:
    """The message ``key`` in ``language``, formatted with ``params``.

    ``language`` is an ISO 639-1 code, optionally with a region ("fr-CA" reads as "fr"); None or a
    language without a translation gives English. Raises ValueError for an unknown key and KeyError when
    the text needs a placeholder missing from ``params``.
    """
    texts = MESSAGES[MessageKey(key)]
    base = (language or DEFAULT_LANGUAGE).replace("_", "-").split("-")[0].lower()
    template = texts.get(base, texts[DEFAULT_LANGUAGE])
    return template.format(**params)
