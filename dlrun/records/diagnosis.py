"""diagnosis.json: the verdict, the path through the map, findings with evidence, remedies.

`Diagnosis.from_json` is how every later reader (sweeps, the follow sweeper, tests) gets
the verdict and the remedies back: never by indexing the raw file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from dlrun.records.codes import Code, Verdict
from dlrun.records.evidence import Evidence, dump
from dlrun.records.rows import clean


def _code(value: str) -> Code | str:
    """A code this version knows, or the plain string one written by another version."""
    try:
        return Code(value)
    except ValueError:
        return value


@dataclass
class Finding:
    """One fact the diagnosis established; `evidence` holds its numbers."""

    code: Code
    message: str
    evidence: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"code": str(self.code), "message": self.message, "evidence": dump(self.evidence)}

    @classmethod
    def from_json(cls, data: dict) -> Finding:
        return cls(_code(data["code"]), data.get("message", ""), data.get("evidence") or {})


@dataclass
class Remedy:
    """What to try next: a sentence and the complete command. `overrides` is what the
    remedy changes on top of the run's own overrides (in memory only)."""

    action: str
    command: str
    overrides: list[str] = field(default_factory=list)
    expect: str | None = None  # what the evidence says it can at best reach

    def to_json(self) -> dict:
        data = {"action": self.action, "command": self.command}
        return data if self.expect is None else {**data, "expect": self.expect}

    @classmethod
    def from_json(cls, data: dict) -> Remedy:
        return cls(data["action"], data["command"], list(data.get("overrides") or []),
                   data.get("expect"))


@dataclass
class Decision:
    """One question of the map answered: which question, the answer, why (in words and numbers)."""

    node: str
    answer: str
    because: str
    evidence: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"node": self.node, "answer": self.answer, "because": self.because,
                "evidence": dump(self.evidence)}

    @classmethod
    def from_json(cls, data: dict) -> Decision:
        return cls(data["node"], data["answer"], data.get("because", ""),
                   data.get("evidence") or {})


@dataclass
class Diagnosis:
    verdict: Verdict
    stuck: Code | None = None  # where an optimization issue is stuck
    findings: list[Finding] = field(default_factory=list)
    remedies: list[Remedy] = field(default_factory=list)
    # commands that change the measurement, not the model (never followed as remedies)
    checks: list[Remedy] = field(default_factory=list)
    path: list[Decision] = field(default_factory=list)
    evidence: Evidence | None = None
    cost: dict[str, float] = field(default_factory=dict)  # seconds per probe

    def has(self, code: Code) -> bool:
        return any(f.code == code for f in self.findings)

    def finding(self, code: Code) -> Finding | None:
        return next((f for f in self.findings if f.code == code), None)

    def to_json(self) -> dict:
        return {
            "verdict": str(self.verdict),
            "stuck": None if self.stuck is None else str(self.stuck),
            "findings": [f.to_json() for f in self.findings],
            "remedies": [r.to_json() for r in self.remedies],
            "checks": [r.to_json() for r in self.checks],
            "path": [d.to_json() for d in self.path],
            "evidence": {} if self.evidence is None else self.evidence.to_json(),
            "cost": clean(self.cost),
        }

    @classmethod
    def from_json(cls, data: dict) -> Diagnosis:
        stuck = data.get("stuck")
        return cls(
            verdict=Verdict(data["verdict"]),
            stuck=None if stuck is None else _code(stuck),
            findings=[Finding.from_json(f) for f in data.get("findings", [])],
            remedies=[Remedy.from_json(r) for r in data.get("remedies", [])],
            checks=[Remedy.from_json(r) for r in data.get("checks", [])],
            path=[Decision.from_json(d) for d in data.get("path", [])],
            evidence=Evidence.from_json(data["evidence"]) if data.get("evidence") else None,
            cost=data.get("cost") or {},
        )


def read_diagnosis(run_dir: Path) -> Diagnosis | None:
    """The run's diagnosis.json, or None (diagnose=off, a killed run, an unreadable file)."""
    try:
        data = json.loads((Path(run_dir) / "diagnosis.json").read_text())
        return Diagnosis.from_json(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None
