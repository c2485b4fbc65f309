"""The committed JSON Schema matches the models, and the library files validate against it."""

from __future__ import annotations

import json
from pathlib import Path

from playbooks import LIBRARY_DIR
from playbooks.export_schema import SCHEMA_PATH, schema_text, write_schema
from playbooks.schema import parse_duration


def test_committed_schema_is_up_to_date() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), "run: python -m playbooks.export_schema"


def test_schema_describes_the_format(tmp_path: Path) -> None:
    written = write_schema(tmp_path / "s.json")
    schema = json.loads(written.read_text(encoding="utf-8"))
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"id", "name", "version", "steps"}
    mapping = schema["properties"]["steps"]["items"]["discriminator"]["mapping"]
    assert set(mapping) == {"message", "ask", "condition", "score", "wait", "handoff", "end", "book", "sync"}
    assert "if" in schema["$defs"]["ConditionStep"]["properties"]


def test_library_files_point_at_the_schema() -> None:
    for path in LIBRARY_DIR.glob("*.yaml"):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        target = first.split("$schema=", 1)[1]
        assert (path.parent / target).resolve() == SCHEMA_PATH.resolve()


def test_parse_duration() -> None:
    assert [parse_duration(t) for t in ["90s", "30m", "2h", "1d", "1h30m", "1d 2h"]] == [
        90,
        1800,
        7200,
        86400,
        5400,
        93600,
    ]
    for bad in ["", "0m", "soon", "10", "1x"]:
        try:
            parse_duration(bad)
        except ValueError as exc:
            assert "duration" in str(exc)
        else:
            raise AssertionError(f"{bad!r} parsed")
