"""Settings objects users hand to ``AutoOD`` (light: importable without MLflow, so parameters can be checked)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrackingSettings:
    """Where and what to log. ``required=False`` runs the search untracked (with a notice)
    when the store is unreachable; ``example_rows`` > 0 puts that many real rows in the
    model's input example (the default builds one from the schema, so no data lands there)."""

    uri: str | None = None
    experiment: str = "automl-od"
    register_as: str | None = None
    alias: str = "champion"
    required: bool = True
    example_rows: int = 0
    run_name: str | None = None
