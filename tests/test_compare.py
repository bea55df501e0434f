"""`dlrun-summary PATH...` and a multirun's own summary: seeds grouped with mean ± std,
rows named by directory and differing overrides, CSV/JSON export, tables that fit."""

from __future__ import annotations

import csv
import io
import json
import statistics

import pytest
from conftest import dlrun_command
from rich.console import Console
from test_sweep import multirun

from dlrun.sweep import table
from dlrun.sweep.summary import SUMMARY_JSON, SUMMARY_MD, summarize_sweep
from dlrun.sweep.summary import main as summary_main


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """3 seeds x 2 learning rates: 6 jobs."""
    return multirun(tmp_path_factory.mktemp("seeds"), "trainer.seed=0,1,2",
                    "optim.lr=0.01,0.001")


def test_a_seed_sweep_groups_into_one_row_per_learning_rate(seeds):
    sweep, printed = seeds
    summary = json.loads((sweep / SUMMARY_JSON).read_text())
    assert summary["n_jobs"] == 6 and len(summary["rows"]) == 2
    for row in summary["rows"]:
        assert row["n"] == 3 and row["seeds"] == [0, 1, 2]
        (lr,) = row["overrides"]
        jobs = [j for j in summary["jobs"] if lr in j["overrides"]]
        objectives = [j["objective"] for j in jobs]
        assert row["objective"] == pytest.approx(statistics.fmean(objectives))
        assert row["objective_std"] == pytest.approx(statistics.stdev(objectives))
        assert row["objective_std"] > 0  # the seeds really differ
        tests = [j["final"]["test_acc"] for j in jobs]
        assert row["final_test_acc"] == pytest.approx(statistics.fmean(tests))
    best = summary["rows"][summary["best_row"]]
    assert best["objective"] == min(r["objective"] for r in summary["rows"])
    # the terminal and Markdown tables: two rows, each with its n and a ± std
    md_rows = [r for r in (sweep / SUMMARY_MD).read_text().splitlines()
               if r.startswith("| ") and not r.startswith(("| ---", "| job"))]
    assert len(md_rows) == 2 and all(" ± " in r and "| 3 |" in r for r in md_rows)
    assert "0,2,4" in printed or "0,1,2" in printed.replace(" ", "")
    assert (sweep / "sweep.png").is_file()


def test_dlrun_summary_exports_the_grouped_rows(seeds, tmp_path, capsys):
    sweep, _ = seeds
    out_csv, out_json = tmp_path / "rows.csv", tmp_path / "rows.json"
    assert summary_main([str(sweep), "--no-write", "--csv", str(out_csv),
                         "--json", str(out_json)]) == 0
    rows = list(csv.DictReader(out_csv.read_text().splitlines()))
    assert len(rows) == 2 and {r["n"] for r in rows} == {"3"}
    assert {r["overrides"] for r in rows} == {"optim.lr=0.01", "optim.lr=0.001"}
    exported = json.loads(out_json.read_text())
    assert [r["objective"] for r in exported] == [float(r["objective"]) for r in rows]
    assert float(rows[0]["objective_std"]) == pytest.approx(exported[0]["objective_std"])


def test_mixed_directories_are_named_by_directory_and_differing_overrides(seeds, tmp_path,
                                                                          capsys):
    sweep, _ = seeds
    single = tmp_path / "single"
    done = dlrun_command("trainer.epochs=1", "diagnose=off", "trainer.progress=off",
                         "data.n_train=128", "optim.lr=0.1", f"hydra.run.dir={single}",
                         cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out_json = tmp_path / "rows.json"
    pattern = str(sweep / "*")  # the job directories, and files and tb/ that hold no run
    assert summary_main([pattern, str(single), "--json", str(out_json)]) == 0
    rows = json.loads(out_json.read_text())
    names = [r["name"] for r in rows]
    assert len(rows) == 3 and len(set(names)) == 3  # no job number twice
    assert {"seeds0/sweep/0,2,4", "seeds0/sweep/1,3,5"} <= set(names)  # sweep dir + jobs
    (single_row,) = [r for r in rows if r["name"].endswith("/single")]
    assert single_row["overrides"] == ["optim.lr=0.1"] and single_row["n"] == 1
    printed = capsys.readouterr().out
    assert "7 runs under" in printed and "single" in printed


def test_the_table_fits_100_columns_and_keeps_every_column_when_piped(seeds, capsys):
    sweep, _ = seeds
    summary = summarize_sweep(sweep)
    header, _ = table.cells(summary["rows"], summary["jobs"], summary["best_row"])
    out = io.StringIO()
    Console(file=out, width=100).print(table.rich_table(
        summary["rows"], summary["jobs"], summary["best_row"], "t", "c", width=100))
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 100
    text = out.getvalue()
    assert "verdict" in text and "objective" in text and "optim.lr=0.01" in text
    assert "left out at this width" in text  # and it says which

    assert summary_main([str(sweep), "--no-write"]) == 0  # pytest's stdout is a pipe
    piped = capsys.readouterr().out
    for name in header[1:]:  # the first is "job" for a sweep
        assert name.split(" ")[-1] in piped
    assert "left out" not in piped


def test_a_folder_of_runs_is_compared_and_left_alone(seeds, tmp_path, capsys):
    """outputs/runs/<date>: its runs in one table, and no sweep files written into it."""
    import shutil

    folder = tmp_path / "runs"
    for n in (0, 1):
        shutil.copytree(seeds[0] / str(n), folder / f"run{n}")
    assert summary_main([str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["run0", "run1"]
    assert "2 runs under" in capsys.readouterr().out
