"""The parameter-count table printed before training: one row per top-level layer, then the total."""

from __future__ import annotations

from rich.table import Table

from dlrun.report.terminal import console

MAX_ROWS = 16  # longer models show their first and last layers around an elided middle


def params_table(layers: list[dict], total: int) -> Table:
    table = Table(title="parameters", show_header=True, title_justify="left")
    table.add_column("layer")
    table.add_column("type")
    table.add_column("params", justify="right")
    table.add_column("", style="dim")
    shown = layers
    if len(layers) > MAX_ROWS:
        head, tail = layers[: MAX_ROWS - 3], layers[-2:]
        hidden = layers[len(head) : -2]
        elided = {
            "layer": "...",
            "type": f"{len(hidden)} more",
            "params": sum(r["params"] for r in hidden),
            "detail": "",
        }
        shown = [*head, elided, *tail]
    for row in shown:
        table.add_row(row["layer"], row["type"], f"{row['params']:,}", row.get("detail", ""))
    table.add_section()
    table.add_row("total", "", f"{total:,}", "")
    return table


def print_params(layers: list[dict], total: int) -> None:
    console.print(params_table(layers, total))
