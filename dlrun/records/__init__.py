"""The records every layer passes: epoch rows, run summaries, diagnoses and their codes.

Each record has one `to_json` and one `from_json`, so metrics.jsonl, summary.json and
diagnosis.json keep the keys that users and tools read (DESIGN.md section 3), and every
reader of a run directory goes through here instead of indexing raw dicts. No torch.
"""

from dlrun.records.codes import Code, Verdict
from dlrun.records.diagnosis import Decision, Diagnosis, Finding, Remedy, read_diagnosis
from dlrun.records.rows import SPLITS, EpochRow, best_row, read_rows
from dlrun.records.summary import Summary, read_summary

__all__ = [
    "SPLITS",
    "Code",
    "Decision",
    "Diagnosis",
    "EpochRow",
    "Finding",
    "Remedy",
    "Summary",
    "Verdict",
    "best_row",
    "read_diagnosis",
    "read_rows",
    "read_summary",
]
