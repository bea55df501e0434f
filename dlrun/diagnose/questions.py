"""The machinery of the map: questions, leaves, side findings, and the walk over them.

A `Question` answers itself from the evidence (`judge`: an answer, the numbers it rests
on, the findings it established), says why in words (`explain`), and names the probes
that could change its answer (`wants`). `walk` follows the answers from the root to a
leaf, running each wanted probe when it reaches the question that needs it, so the order
of the probes is the order of the map. The map itself is in `dlrun.diagnose.map`; the
terminal tree, the TensorBoard text and the remedies are all read off the same objects.
No torch here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dlrun.records import Code, Decision, Finding, Verdict
from dlrun.records.evidence import Evidence

# `measure(probe)` runs one probe into the evidence and says whether it learned anything
Measure = Callable[[str], bool]


def fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def wrong_often(exact, split: str, th) -> bool:
    """seq2seq: whole targets wrong more often than large_loss_fraction (the trivial
    predictor gets ~all of them wrong), however small the per-token loss."""
    return exact is not None and 1 - exact[split] > th.large_loss_fraction


def exact_text(exact, split: str, fraction: float) -> str:
    if exact is None:
        return ""
    return (f"; {split} exact match {exact[split]:.3f}, so {1 - exact[split]:.3f} of whole "
            f"targets wrong vs {fraction:g}")


@dataclass
class Judgement:
    """A question's answer with the numbers it rests on and the findings it established."""

    answer: str
    numbers: dict = field(default_factory=dict)  # diagnosis.json's path[].evidence
    findings: list[Finding] = field(default_factory=list)
    context: dict = field(default_factory=dict)  # settings `explain` words (not evidence)

    def find(self, code: Code, message: str, **evidence) -> None:
        self.findings.append(Finding(code, message, evidence))

    def has(self, code: Code) -> bool:
        return any(f.code == code for f in self.findings)


@dataclass(frozen=True)
class Leaf:
    """Where a walk ends: a verdict (and, under "where is it stuck?", the stuck code)."""

    id: str
    label: str
    verdict: Verdict
    stuck: Code | None = None


class Question:
    """One question of the map. Subclasses set `id`, `label`, `answers` (answer -> child,
    in the order the tree is drawn), `needs`, and implement `judge` and `explain`."""

    id: str
    label: str
    answers: dict[str, Question | Leaf]
    needs: tuple[str, ...] = ()  # probes whose evidence could change the answer

    def judge(self, ev: Evidence, th) -> Judgement:
        raise NotImplementedError

    def explain(self, judgement: Judgement) -> str:
        raise NotImplementedError

    def wants(self, ev: Evidence, th, judgement: Judgement) -> tuple[str, ...]:
        """The probes worth running before this answer is final (all of `needs` by default)."""
        return self.needs


class SideFinding:
    """A finding that can accompany a verdict (a symptom, the saddle escape, overtraining):
    judged once the walk has reached its leaf, on runs whose path passed `after`."""

    code: Code
    after: str | None = None  # a question id the path must contain; None: any path
    needs: tuple[str, ...] = ()

    def judge(self, ev: Evidence, th) -> list[Finding]:
        raise NotImplementedError

    def wants(self, ev: Evidence, th) -> tuple[str, ...]:
        return self.needs


@dataclass
class Outcome:
    verdict: Verdict
    stuck: Code | None
    path: list[Decision]
    findings: list[Finding]

    def has(self, code: Code) -> bool:
        return any(f.code == code for f in self.findings)


def nodes(root: Question | Leaf):
    """Every question and leaf below `root`, depth first, in drawing order."""
    yield root
    if isinstance(root, Question):
        for child in root.answers.values():
            yield from nodes(child)


def walk(root: Question, side: list[SideFinding], ev: Evidence, th,
         measure: Measure | None = None) -> Outcome:
    """Answer the questions from `root` down; with `measure`, run the probes they want."""
    path: list[Decision] = []
    findings: list[Finding] = []
    node: Question | Leaf = root
    while isinstance(node, Question):
        judgement = node.judge(ev, th)
        # each probe the answer still wants, then the answer again, until none is left
        while measure is not None and [p for p in node.wants(ev, th, judgement) if measure(p)]:
            judgement = node.judge(ev, th)
        path.append(Decision(node.id, judgement.answer, node.explain(judgement),
                             judgement.numbers))
        findings += judgement.findings
        node = node.answers[judgement.answer]
    visited = {d.node for d in path}
    for extra in side:
        if extra.after is not None and extra.after not in visited:
            continue
        if measure is not None:
            for probe in extra.wants(ev, th):
                measure(probe)
        findings += extra.judge(ev, th)
    return Outcome(node.verdict, node.stuck, path, findings)
