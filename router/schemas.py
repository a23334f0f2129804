"""JSON Schemas of the event contract, generated from the pydantic models."""

from __future__ import annotations

import json
from pathlib import Path

from rules.events import SCHEMAS


def render(name: str) -> str:
    schema = SCHEMAS[name].model_json_schema(mode="serialization")
    schema["$id"] = f"urn:leadrouter:schema:v1:{name}"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_schemas(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in SCHEMAS:
        path = folder / f"{name}.json"
        path.write_text(render(name), encoding="utf-8")
        paths.append(path)
    return paths


def check_schemas(folder: Path) -> list[str]:
    """Lines describing each drift between the models and the checked-in files."""
    drift = []
    for name in SCHEMAS:
        path = folder / f"{name}.json"
        if not path.exists():
            drift.append(f"{path}: missing (run `leadrouter schemas`)")
        elif path.read_text(encoding="utf-8") != render(name):
            drift.append(f"{path}: differs from rules/events.py (run `leadrouter schemas`)")
    known = {f"{n}.json" for n in SCHEMAS}
    drift += [f"{p}: no model has this schema" for p in folder.glob("*.json") if p.name not in known]
    return drift
