"""What a decision records about itself: the facts it saw and each route it tried.

Traces name reps, routes and fields, never a lead's contact details. They are
immutable values, so a compiled rulebook builds the steps that do not depend on
the lead (a route skipped for a fixed reason) once and every decision shares them.
"""

from __future__ import annotations

from dataclasses import dataclass

Verdict = str  # picked | not_their_turn | away | offline | out_of_office | out_of_hours | missing_skill | ...


@dataclass(frozen=True, slots=True)
class RouteStep:
    route: str
    matched: bool
    reason: str
    outcome: str = "skipped"  # skipped | assigned | queued | nobody_available | no_owner
    candidates: tuple[tuple[str, Verdict], ...] = ()


@dataclass(frozen=True, slots=True)
class Trace:
    territories: tuple[str, ...]
    segments: tuple[str, ...]
    named_account: str | None
    steps: tuple[RouteStep, ...]

    def summary(self) -> str:
        """The compact form that rides on the output event."""
        parts = []
        for step in self.steps:
            text = f"{step.route}: {step.reason}" if not step.matched else f"{step.route}: {step.outcome}"
            skipped = [
                f"{rep} {why}" for rep, why in step.candidates if why not in ("picked", "not_their_turn")
            ]
            if skipped:
                text += " (" + ", ".join(skipped) + ")"
            parts.append(text)
        return "; ".join(parts)
