"""Write ``playbooks/schema/playbook.schema.json`` from the pydantic models.

Editors use the file for completion and checks in playbook YAML (the library files start with
``# yaml-language-server: $schema=../schema/playbook.schema.json``). A test fails when the
committed file differs from :func:`schema_text`; regenerate with
``python -m playbooks.export_schema``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from playbooks.schema import Playbook

__all__ = ["SCHEMA_PATH", "schema_text", "write_schema"]

SCHEMA_PATH = Path(__file__).parent / "schema" / "playbook.schema.json"


def schema_text() -> str:
    """The JSON Schema of a playbook (draft 2020-12, as pydantic emits it), indented by 2, newline-ended."""
    schema = Playbook.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    """Write :func:`schema_text` to ``path`` (default: the committed file) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema_text(), encoding="utf-8")
    return path


def main() -> int:
    """``python -m playbooks.export_schema [PATH]``."""
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_PATH
    print(write_schema(target))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
