"""The README's knob reference tables, rendered from the schemas (a test keeps them in step).

`python -m dlrun.schema.doc README.md` rewrites every block of the README between
`<!-- knobs: GROUP -->` and `<!-- /knobs -->` with the table of that group's schema.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from dlrun.schema.diagnose import DiagnoseConfig
from dlrun.schema.follow import FollowConfig
from dlrun.schema.knobs import default, fields, spec
from dlrun.schema.trainer import TrainerConfig

TABLES = {"trainer": TrainerConfig, "diagnose": DiagnoseConfig, "follow": FollowConfig}
BLOCK = re.compile(r"(<!-- knobs: (\w+) -->\n)(.*?)(<!-- /knobs -->)", re.S)


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _allowed(rule_text: str) -> str:
    """`must be >= 1, or null ...` -> `>= 1, or null ...`; `must lie in [0, 1)` -> `in [0, 1)`."""
    return rule_text.removeprefix("must ").removeprefix("be ").removeprefix("lie ")


def table(group: str) -> str:
    """The markdown table of a group's knobs: key, default, allowed values, meaning."""
    schema = TABLES[group]
    rows = ["| knob | default | allowed | meaning |", "|---|---|---|---|"]
    for field in fields(schema):
        knob = spec(schema, field.name)
        cells = [f"`{group}.{field.name}`", f"`{_text(default(field))}`",
                 _allowed(knob.rule.text) if knob.rule else "", knob.meaning or ""]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


def render(readme: str) -> str:
    """The README with every knob block replaced by its group's table."""
    return BLOCK.sub(lambda m: m.group(1) + table(m.group(2)) + m.group(4), readme)


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    path.write_text(render(path.read_text()))
