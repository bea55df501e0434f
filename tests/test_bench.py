"""scripts/bench.py runs and reports every implementation against the reference loop."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_case_reports_rates_ratios_and_shares(bench, one_thread):
    result = bench.bench_case("mlp_b100", "cpu", repeats=1, compiled=False, extra=["data.n_train=500"])
    rates, ratios = result["steps_per_s"], result["ratio_to_reference"]
    assert {"dlrun", "dlrun-nodiag", "reference", "reference+eval", "textbook"} <= rates.keys()
    assert all(low <= rates[key] <= high for key, (low, high) in result["spread"].items())
    assert all(rate > 0 for rate in rates.values())
    assert ratios["reference"] == 1.0
    assert ratios["dlrun"] == pytest.approx(rates["dlrun"] / rates["reference"])
    assert 0 < result["dlrun_eval_share"] < 1
    assert result["train_examples"] == 500 and result["batch_size"] == 100


def test_ratios_pair_each_repeat_with_its_own_reference(bench):
    """A machine twice as fast in the second repeat leaves the ratio at 2, not 3 or 1."""
    assert bench.paired_ratio([2.0, 10.0, 3.0], [1.0, 10.0, 1.0]) == 2.0
    assert bench.paired_ratio([200.0, 400.0], [100.0, 200.0]) == 2.0


@pytest.fixture(scope="module")
def sweeps():
    spec = importlib.util.spec_from_file_location("bench_sweeps", SCRIPT.parent / "bench_sweeps.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sweep_grids_have_k_jobs(sweeps):
    for jobs in sweeps.SIZES:
        lrs, decays = (o.split("=", 1)[1].split(",") for o in sweeps.grid(jobs))
        assert len(lrs) * len(decays) == jobs and len(set(lrs)) == len(lrs)
        assert float(lrs[0]) == 3e-4 and float(decays[0]) == 0.0


def test_sweep_differences_compare_the_same_jobs(sweeps):
    ours = {("a",): 1.0, ("b",): 2.00001, ("c",): 3.3, ("d",): None}
    theirs = {("a",): 1.0, ("b",): 2.0, ("c",): 3.0, ("d",): 1.0}
    diff = sweeps.differences(ours, theirs)
    assert diff["within_1e-4"] == "2/3" and diff["max"] == pytest.approx(0.1)


def test_the_thread_scan_reports_the_work_per_step_and_each_count(monkeypatch, one_thread):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # bench_threads imports bench
    import bench_threads

    result = bench_threads.by_threads("default", "cpu", repeats=1, extra=["data.n_train=200"],
                                      counts={"1": 1, "also 1": 1})
    # the default MLP 64-128-128-10 on batches of 64 rows: 2 FLOPs per weight per row
    assert result["step_flops"] == 64 * 2 * (64 * 128 + 128 * 128 + 128 * 10)
    assert result["threads"] == {"1": 1, "also 1": 1} and result["ratio"]["1"] == 1.0
    assert all(rate > 0 for rate in result["steps_per_s"].values())
