"""The diagnosis as the map itself: a rich tree with the run's path highlighted and the
evidence beside each decision, then the findings and the remedies; the same as
Markdown for TensorBoard's text tab. Formatting only: the decisions are made in
dlrun.diagnose.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from dlrun.diagnose.map import MAP, Node
from dlrun.report.terminal import console

COLOURS = {
    "good": "green",
    "model_bias": "yellow",
    "optimization": "red",
    "overfitting": "magenta",
    "mismatch": "cyan",
    "inconclusive": "white",
}
DECISION_CODES = {
    "good",
    "model_bias",
    "overfitting",
    "mismatch",
    "train_loss_large",
    "simpler_model_better",
    "tiny_subset_not_fit",
}


def _add(
    tree: Tree, node: Node, taken: dict, leaves: set[str], on_path: bool, edge: str = ""
) -> None:
    """`node` under `tree`: bold with its answer and evidence when the run passed it, dim otherwise."""
    step = taken.get(node.id) if on_path else None
    hit = on_path and (step is not None or node.id in leaves)
    text = Text()
    if edge in ("yes", "no"):
        text.append(f"{edge}: ", style="bold" if hit else "dim")
    style = ("bold reverse" if node.id in leaves else "bold") if hit else "dim"
    text.append(node.label, style=style)
    if hit and node.id in leaves:
        text.append("  <= this run", style="bold")
    if step is not None:
        text.append(f"  -> {step['answer'].replace('_', ' ')}", style="bold")
        text.append(f"\n{step['because']}", style="italic")
    branch = tree.add(text)
    children = node.children.items()
    if not hit and children and all(not child.children for _, child in children):
        # a branch the run did not take: its leaves on one line
        branch.add(
            Text(
                " | ".join(child.label.split(" -> ")[0].split(":")[0] for _, child in children),
                style="dim",
            )
        )
        return
    for answer, child in children:
        _add(
            branch,
            child,
            taken,
            leaves,
            hit and step is not None and step["answer"] == answer,
            answer,
        )


def diagnosis_panel(d: dict) -> Panel:
    """The map with this run's path, the findings that are not decisions, and the remedies."""
    verdict = d["verdict"]
    colour = COLOURS.get(verdict, "white")
    title = f"diagnosis: [bold {colour}]{verdict.upper().replace('_', ' ')}[/]"
    if d.get("stuck"):
        title += f" ({d['stuck'].replace('_', ' ')})"
    taken = {step["node"]: step for step in d["path"]}
    root = Tree(Text("The optimization map", style="bold"), guide_style="dim")
    _add(root, MAP, taken, {verdict, d.get("stuck") or ""}, on_path=True)
    parts = [root]
    extra = [
        f for f in d["findings"] if f["code"] not in DECISION_CODES and f["code"] != d.get("stuck")
    ]
    if extra:
        parts.append(Text("\nFindings", style="bold"))
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        for f in extra:
            grid.add_row(f"  {f['code']}", f["message"])
        parts.append(grid)
    if d["remedies"]:
        parts.append(Text("\nRemedies (most promising first)", style="bold"))
        grid = Table.grid(padding=(0, 1))
        grid.add_column(justify="right", no_wrap=True)
        grid.add_column()
        for i, r in enumerate(d["remedies"], 1):
            grid.add_row(f"  {i}.", Text.assemble(r["action"], "\n", (r["command"], "bold cyan")))
        parts.append(grid)
    cost = d.get("cost", {})
    if "total_s" in cost:
        share = (
            f" ({cost['share_of_training']:.0%} of the run)" if "share_of_training" in cost else ""
        )
        parts.append(
            Text(
                f"\nprobes took {cost['total_s']:.2f} s{share}; details in diagnosis.json",
                style="dim",
            )
        )
    return Panel(Group(*parts), title=title, title_align="left", border_style=colour)


def print_diagnosis(d: dict) -> None:
    console.print(diagnosis_panel(d))


def markdown(d: dict) -> str:
    """The same content for TensorBoard's text tab."""
    lines = [f"**verdict: {d['verdict']}**" + (f" ({d['stuck']})" if d.get("stuck") else ""), ""]
    labels = _labels(MAP)
    for step in d["path"]:
        lines.append(
            f"- {labels.get(step['node'], step['node'])} **{step['answer']}**: {step['because']}"
        )
    lines += ["", "**findings**", ""]
    lines += [f"- `{f['code']}`: {f['message']}" for f in d["findings"]]
    if d["remedies"]:
        lines += ["", "**remedies**", ""]
        lines += [f"{i}. {r['action']}: `{r['command']}`" for i, r in enumerate(d["remedies"], 1)]
    return "\n".join(lines)


def _labels(node: Node) -> dict[str, str]:
    out = {node.id: node.label}
    for child in node.children.values():
        out.update(_labels(child))
    return out


def write_tensorboard(run_dir: Path, d: dict) -> None:
    """The diagnosis as text under the run's `tb/` (tag `diagnosis`)."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(Path(run_dir) / "tb"))
    writer.add_text("diagnosis", markdown(d), 0)
    writer.close()
