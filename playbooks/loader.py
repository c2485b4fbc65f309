"""Load playbook YAML files with errors that point at a line.

YAML is read with ruamel.yaml's round-trip loader, which keeps the line and column of every key
and item (``CommentedMap.lc.key``/``lc.value``, ``CommentedSeq.lc.item``; see
https://yaml.dev/doc/ruamel.yaml/detail/). Duplicate keys are errors (ruamel's
``DuplicateKeyError``). Every pydantic error ``loc`` is walked back through the YAML tree to the
line of that node; an error about a missing key points at its parent mapping. Lines are 1-based.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from kernel.errors import LeadWarmError
from playbooks.issue_text import issue_text
from playbooks.schema import Playbook, Step

__all__ = [
    "LIBRARY_DIR",
    "PlaybookError",
    "PlaybookIssue",
    "load_library",
    "load_playbook",
    "load_playbook_text",
    "validate_file",
    "validate_text",
]

LIBRARY_DIR = Path(__file__).parent / "library"
"""The playbooks shipped with LeadWarm."""


@dataclass(frozen=True, slots=True)
class PlaybookIssue:
    """One problem in a playbook file. ``line``/``column`` are 1-based (0 when unknown).

    ``message`` is English, prefixed by ``path`` (``steps[2].kind``) when there is one; ``code``
    (pydantic's error type or the schema's own) and ``params`` (its context as text) let
    :meth:`text` say it in another language (:mod:`playbooks.issue_text`)."""

    file: str
    line: int
    column: int
    message: str
    code: str = ""
    path: str = ""
    params: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"

    def text(self, language: str) -> str:
        """The message in ``language`` (``"fr"``, ``"en"``...), with its path; the English
        ``message`` when that language has no words for this issue."""
        if language == "en" or not self.code:
            return self.message
        words = issue_text(self.code, dict(self.params), language)
        if words is None:
            return self.message
        return f"{self.path}: {words}" if self.path else words


class PlaybookError(LeadWarmError):
    """A playbook file cannot be used; ``issues`` lists every problem found."""

    def __init__(self, issues: Iterable[PlaybookIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


# --------------------------------------------------------------------------- YAML


def _plain(node: Any) -> Any:
    """ruamel's round-trip containers and scalar subclasses -> plain dict/list/str/int/float/bool."""
    if isinstance(node, Mapping):
        return {
            str(key) if not isinstance(key, str | int) else key: _plain(value) for key, value in node.items()
        }
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def _yaml_issue(source: str, exc: YAMLError) -> PlaybookIssue:
    mark = None
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
    if isinstance(exc, MarkedYAMLError):
        parts = [p for p in (exc.context, exc.problem) if p]
        detail = "; ".join(str(p) for p in parts) or str(exc)
        if "duplicate" in type(exc).__name__.lower() or "duplicate" in detail:
            code, message = "yaml_duplicate", f"YAML error: duplicate key ({detail})"
        else:
            code, message = "yaml_syntax", f"YAML syntax error: {detail}"
    else:
        detail = str(exc)
        code, message = "yaml", f"YAML error: {detail}"
    return PlaybookIssue(source, line, column, message, code=code, params=(("detail", detail),))


def _parse_yaml(text: str, source: str) -> Any:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except YAMLError as exc:
        raise PlaybookError([_yaml_issue(source, exc)]) from None


# --------------------------------------------------------------------------- locations


def _position(root: Any, loc: tuple[Any, ...]) -> tuple[int, int, bool]:
    """Line/column (1-based) of ``loc`` in the YAML tree; the flag says the node was found."""
    node = root
    line, column = 1, 1
    if isinstance(root, CommentedMap | CommentedSeq):
        line, column = root.lc.line + 1, root.lc.col + 1
    found = True
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            key_line, key_col = node.lc.key(part)
            line, column = key_line + 1, key_col + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            item_line, item_col = node.lc.item(part)
            line, column = item_line + 1, item_col + 1
            node = node[part]
        elif isinstance(node, CommentedMap) and isinstance(part, str) and node.get("type") == part:
            continue  # discriminated-union tag inserted by pydantic ("steps", 3, "ask", "kind")
        else:
            found = False
            break
    return line, column, found


def _path(loc: tuple[Any, ...], root: Any) -> str:
    text = ""
    node = root
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            continue
        if isinstance(node, Mapping) and part not in node and node.get("type") == part:
            continue
        text += f".{part}" if text else str(part)
        node = node.get(part) if isinstance(node, Mapping) else None
    return text


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_PATTERNS = {
    r"^[A-Za-z_][A-Za-z0-9_]*$": "must be a name of letters, digits and '_' that does not start with a digit",
    r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$": "must be made of letters, digits, '_', '-' and '.'",
    r"^[a-z0-9]+(?:-[a-z0-9]+)*$": "must be lower-case words joined by '-', e.g. 'solar-qualification-en'",
    r"^[a-z]{2}$": "must be a two-letter ISO 639-1 language code, e.g. 'en' or 'fr'",
}


def _message(error: Any) -> str:
    kind = error["type"]
    message = str(error["msg"])
    value = error.get("input")
    if kind == "missing":
        return f"missing required key '{error['loc'][-1]}'" if error["loc"] else "missing required key"
    if kind == "extra_forbidden":
        return f"unknown key '{error['loc'][-1]}' (check the spelling; unknown keys are not allowed)"
    if kind == "union_tag_invalid":
        expected = error.get("ctx", {}).get("expected_tags", "")
        return f"unknown step type {error.get('ctx', {}).get('tag')!r} (expected one of {expected})"
    if kind == "union_tag_not_found":
        return f"missing required key 'type' ({_STEP_TYPES})"
    if kind == "string_pattern_mismatch":
        pattern = str(error.get("ctx", {}).get("pattern", ""))
        message = _PATTERNS.get(pattern, message)
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if _says_value(kind, value):
        message += f" (got {_short(value)})"
    return message


def _step_types() -> str:
    """The step types as the ``type`` key takes them, from the schema: "message, ask, ... or sync"."""
    union = get_args(Step)[0]  # Annotated[Union[...], Field(discriminator="type")]
    names = [str(get_args(member.model_fields["type"].annotation)[0]) for member in get_args(union)]
    return ", ".join(names[:-1]) + " or " + names[-1]


_STEP_TYPES = _step_types()

#: Errors whose message already names the value (or a duration's text) or says which key is
#: wrong: no "(got ...)" after it.
_VALUE_IN_MESSAGE = frozenset(
    {"missing", "extra_forbidden", "union_tag_invalid", "union_tag_not_found"}
    | {"unknown_step", "slot_kind", "duplicate_step", "offer_step", "duration", "duration_zero"}
)


def _says_value(kind: str, value: Any) -> bool:
    """Whether the message ends with the value the marketer wrote (a scalar only)."""
    return isinstance(value, str | int | float | bool) and kind not in _VALUE_IN_MESSAGE


def _params(error: Any, step_types: str) -> tuple[tuple[str, str], ...]:
    """The error's context as text for :func:`playbooks.issue_text.issue_text`: pydantic's ``ctx``,
    ``key`` (the location's last element), ``step_types`` and ``got`` (the value, quoted)."""
    params = {name: str(value) for name, value in (error.get("ctx") or {}).items()}
    if error["loc"]:
        params["key"] = str(error["loc"][-1])
    params["step_types"] = step_types
    value = error.get("input")
    if _says_value(error["type"], value):
        params["got"] = _short(value)
    return tuple(sorted(params.items()))


def _issues(exc: ValidationError, root: Any, source: str) -> list[PlaybookIssue]:
    issues: list[PlaybookIssue] = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        if error["type"] in {"union_tag_invalid", "union_tag_not_found"}:
            loc_for_line = (*loc, "type") if error["type"] == "union_tag_invalid" else loc
        else:
            loc_for_line = loc
        line, column, found = _position(root, loc_for_line)
        if not found and error["type"] != "missing":
            line, column, _ = _position(root, loc[:-1])
        path = _path(loc, root)
        message = _message(error)
        issues.append(
            PlaybookIssue(
                source,
                line,
                column,
                f"{path}: {message}" if path else message,
                code=error["type"],
                path=path,
                params=_params(error, _STEP_TYPES),
            )
        )
    unique = list(dict.fromkeys(issues))
    return sorted(unique, key=lambda issue: (issue.line, issue.column))


# --------------------------------------------------------------------------- public API


def load_playbook_text(text: str, *, source: str = "<string>") -> Playbook:
    """Parse and validate a playbook from YAML ``text``.

    Raises :class:`PlaybookError` listing every issue as ``source:line: message``.
    """
    root = _parse_yaml(text, source)
    if not isinstance(root, CommentedMap):
        raise PlaybookError(
            [
                PlaybookIssue(
                    source,
                    1,
                    1,
                    "a playbook must be a YAML mapping (id:, name:, steps: ...)",
                    code="not_mapping",
                )
            ]
        )
    try:
        return Playbook.model_validate(_plain(root))
    except ValidationError as exc:
        raise PlaybookError(_issues(exc, root, source)) from None


def load_playbook(path: str | Path) -> Playbook:
    """Read and validate the playbook file at ``path``; raises :class:`PlaybookError` (also if unreadable)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        issue = PlaybookIssue(
            source, 0, 0, f"cannot read the file: {exc}", code="unreadable", params=(("detail", str(exc)),)
        )
        raise PlaybookError([issue]) from None
    return load_playbook_text(text, source=source)


def validate_text(text: str, *, source: str = "<string>") -> list[PlaybookIssue]:
    """Every issue in playbook ``text`` (empty list when it is valid)."""
    try:
        load_playbook_text(text, source=source)
    except PlaybookError as exc:
        return exc.issues
    return []


def validate_file(path: str | Path) -> list[PlaybookIssue]:
    """Every issue in the playbook file at ``path`` (empty list when it is valid)."""
    try:
        load_playbook(path)
    except PlaybookError as exc:
        return exc.issues
    return []


def load_library(directory: str | Path | None = None) -> dict[str, Playbook]:
    """Load every ``*.yaml`` playbook of ``directory`` (default: the shipped library), keyed by id.

    Raises :class:`PlaybookError` with the issues of every broken file, or when two files share an id.
    """
    folder = Path(directory) if directory is not None else LIBRARY_DIR
    playbooks: dict[str, Playbook] = {}
    issues: list[PlaybookIssue] = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            playbook = load_playbook(path)
        except PlaybookError as exc:
            issues.extend(exc.issues)
            continue
        if playbook.id in playbooks:
            issues.append(
                PlaybookIssue(
                    str(path),
                    1,
                    1,
                    f"id: {playbook.id!r} is already used by another playbook",
                    code="id_taken",
                    params=(("id", repr(playbook.id)),),
                )
            )
        playbooks[playbook.id] = playbook
    if issues:
        raise PlaybookError(issues)
    return playbooks
