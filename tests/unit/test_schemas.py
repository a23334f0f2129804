"""The checked-in JSON Schemas in docs/schemas match the contract models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router.schemas import check_schemas, render, write_schemas
from rules.events import SCHEMAS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def test_checked_in_schemas_match_the_models() -> None:
    """docs/schemas/*.json are exactly what the models render (run `leadrouter schemas` to update)."""
    assert check_schemas(DOCS) == []


def test_every_model_has_a_checked_in_schema() -> None:
    """docs/schemas holds one file per contract model and nothing else."""
    assert sorted(p.stem for p in DOCS.glob("*.json")) == sorted(SCHEMAS)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_rendered_schema_is_stable_json(name: str) -> None:
    """Each schema is sorted, indented JSON with a versioned $id, and renders the same every time."""
    text = render(name)
    assert text == render(name)
    assert text.endswith("}\n")
    schema = json.loads(text)
    assert schema["$id"] == f"urn:leadrouter:schema:v1:{name}"
    assert json.dumps(schema, indent=2, sort_keys=True) + "\n" == text


@pytest.mark.parametrize(
    ("name", "forbids_extra"),
    [
        ("lead-event", False),
        ("activity-event", False),
        ("lead-assigned", True),
        ("lead-queued", True),
        ("sla-met", True),
        ("sla-breached", True),
    ],
)
def test_schema_states_extra_field_policy(name: str, forbids_extra: bool) -> None:
    """Outbound schemas forbid additional properties; inbound ones allow them."""
    schema = json.loads(render(name))
    assert (schema.get("additionalProperties") is False) == forbids_extra


def test_write_then_check_is_clean(tmp_path: Path) -> None:
    """Schemas freshly written to a folder check clean."""
    written = write_schemas(tmp_path / "schemas")
    assert sorted(p.name for p in written) == sorted(f"{n}.json" for n in SCHEMAS)
    assert check_schemas(tmp_path / "schemas") == []


def test_drift_is_reported(tmp_path: Path) -> None:
    """check_schemas reports an altered file, a missing file and a file no model owns."""
    write_schemas(tmp_path)
    altered = tmp_path / "lead-assigned.json"
    altered.write_text(
        altered.read_text(encoding="utf-8").replace('"rep_id"', '"agent_id"'), encoding="utf-8"
    )
    (tmp_path / "sla-met.json").unlink()
    (tmp_path / "lead-deleted.json").write_text("{}\n", encoding="utf-8")
    drift = check_schemas(tmp_path)
    assert len(drift) == 3
    assert any(line.startswith(str(altered)) and "differs" in line for line in drift)
    assert any(line.startswith(str(tmp_path / "sla-met.json")) and "missing" in line for line in drift)
    assert any(line.startswith(str(tmp_path / "lead-deleted.json")) and "no model" in line for line in drift)


def test_whitespace_change_is_drift(tmp_path: Path) -> None:
    """Even a formatting-only edit counts as drift: the files are generated, not hand-edited."""
    write_schemas(tmp_path)
    path = tmp_path / "lead-event.json"
    path.write_text(path.read_text(encoding="utf-8").rstrip("\n"), encoding="utf-8")
    assert check_schemas(tmp_path) == [f"{path}: differs from rules/events.py (run `leadrouter schemas`)"]


def test_empty_folder_reports_every_schema_missing(tmp_path: Path) -> None:
    """An empty (or absent) folder reports each model's schema as missing."""
    drift = check_schemas(tmp_path / "nowhere")
    assert len(drift) == len(SCHEMAS)
    assert all("missing" in line for line in drift)
