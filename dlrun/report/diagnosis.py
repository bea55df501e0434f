"""The diagnosis as the map itself: a rich tree drawn from the map's own questions and
leaves, with the run's path highlighted and the evidence beside each decision, then the
findings and the remedies; the same as Markdown for TensorBoard's text tab. Formatting
only: the decisions are made in dlrun.diagnose.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from dlrun.diagnose.map import MAP, RESTATED
from dlrun.diagnose.questions import Leaf, Question, nodes
from dlrun.records import Diagnosis, Verdict
from dlrun.report.terminal import console

COLOURS = {
    Verdict.GOOD: "green",
    Verdict.MODEL_BIAS: "yellow",
    Verdict.OPTIMIZATION: "red",
    Verdict.OVERFITTING: "magenta",
    Verdict.MISMATCH: "cyan",
    Verdict.INCONCLUSIVE: "white",
}


def _add(tree: Tree, node: Question | Leaf, taken: dict, leaf: str, on_path: bool,
         edge: str = "") -> None:
    """`node` under `tree`: bold with its answer and evidence when the run passed it, dim otherwise."""
    step = taken.get(node.id) if on_path else None
    hit = on_path and (step is not None or node.id == leaf)
    text = Text()
    if edge in ("yes", "no"):
        text.append(f"{edge}: ", style="bold" if hit else "dim")
    text.append(node.label, style=("bold reverse" if node.id == leaf else "bold") if hit else "dim")
    if hit and node.id == leaf:
        text.append("  <= this run", style="bold")
    if step is not None:
        text.append(f"  -> {step.answer.replace('_', ' ')}", style="bold")
        text.append(f"\n{step.because}", style="italic")
    branch = tree.add(text)
    if not isinstance(node, Question):
        return
    children = node.answers.items()
    if not hit and all(isinstance(child, Leaf) for _, child in children):
        # a branch the run did not take: its leaves on one line
        short = (child.label.split(" -> ")[0].split(":")[0] for _, child in children)
        branch.add(Text(" | ".join(short), style="dim"))
        return
    for answer, child in children:
        _add(branch, child, taken, leaf, hit and step is not None and step.answer == answer, answer)


def _leaf_id(d: Diagnosis) -> str:
    if d.stuck is not None:
        return str(d.stuck)
    last = d.path[-1] if d.path else None
    for node in nodes(MAP):
        if isinstance(node, Question) and last is not None and node.id == last.node:
            child = node.answers.get(last.answer)
            return child.id if isinstance(child, Leaf) else ""
    return str(d.verdict)


def diagnosis_panel(d: Diagnosis) -> Panel:
    """The map with this run's path, the findings that are not decisions, and the remedies."""
    colour = COLOURS.get(d.verdict, "white")
    title = f"diagnosis: [bold {colour}]{d.verdict.upper().replace('_', ' ')}[/]"
    if d.stuck:
        title += f" ({d.stuck.replace('_', ' ')})"
    root = Tree(Text("The optimization map", style="bold"), guide_style="dim")
    _add(root, MAP, {step.node: step for step in d.path}, _leaf_id(d), on_path=True)
    parts = [root]
    shown = {*RESTATED, _leaf_id(d)}  # said by the tree already
    extra = [f for f in d.findings if str(f.code) not in shown]
    if extra:
        parts.append(Text("\nFindings", style="bold"))
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        for f in extra:
            grid.add_row(f"  {f.code}", f.message)
        parts.append(grid)
    for title, listed in (("Remedies (most promising first)", d.remedies),
                          ("Checks (they change the measurement, not the model)", d.checks)):
        if listed:
            parts.append(Text(f"\n{title}", style="bold"))
            parts.append(_numbered(listed))
    if "total_s" in d.cost:
        share = d.cost.get("share_of_training")
        share_text = f" ({share:.0%} of the run)" if share is not None else ""
        parts.append(Text(f"\nprobes took {d.cost['total_s']:.2f} s{share_text}; details in "
                          "diagnosis.json", style="dim"))
    return Panel(Group(*parts), title=title, title_align="left", border_style=colour)


def _numbered(remedies) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column()
    for i, r in enumerate(remedies, 1):
        action = r.action + (f" ({r.expect})" if r.expect else "")
        grid.add_row(f"  {i}.", Text.assemble(action, "\n", (r.command, "bold cyan")))
    return grid


def print_diagnosis(d: Diagnosis) -> None:
    console.print(diagnosis_panel(d))


def markdown(d: Diagnosis) -> str:
    """The same content for TensorBoard's text tab."""
    lines = [f"**verdict: {d.verdict}**" + (f" ({d.stuck})" if d.stuck else ""), ""]
    labels = {node.id: node.label for node in nodes(MAP)}
    lines += [f"- {labels.get(s.node, s.node)} **{s.answer}**: {s.because}" for s in d.path]
    lines += ["", "**findings**", ""]
    lines += [f"- `{f.code}`: {f.message}" for f in d.findings]
    for title, listed in (("remedies", d.remedies), ("checks", d.checks)):
        if listed:
            lines += ["", f"**{title}**", ""]
            lines += [f"{i}. {r.action}" + (f" ({r.expect})" if r.expect else "")
                      + f": `{r.command}`" for i, r in enumerate(listed, 1)]
    return "\n".join(lines)


def write_tensorboard(run_dir: Path, d: Diagnosis) -> None:
    """The diagnosis as text in the run's own TensorBoard run (tag `diagnosis`)."""
    from torch.utils.tensorboard import SummaryWriter

    from dlrun.report.tensorboard import board_dir

    writer = SummaryWriter(str(board_dir(run_dir)))
    writer.add_text("diagnosis", markdown(d), 0)
    writer.close()
