"""The command line as a user meets it: help, printed configs, bad input, sweeps."""

import json
import sys
from pathlib import Path

import pytest
from conftest import dlrun_command
from hydra.core.hydra_config import HydraConfig

from dlrun import cli


def run_cli(monkeypatch, tmp_path, capsys, *args, full_error: str | None = None):
    """`dlrun <args>` in this process (no torch import per case); returns (exit code, stdout, stderr).
    `full_error`: the value of HYDRA_FULL_ERROR (unset by default)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["dlrun", *args])
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    if full_error is not None:
        monkeypatch.setenv("HYDRA_FULL_ERROR", full_error)
    code = 0
    try:
        cli.main()
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    finally:
        HydraConfig.instance().cfg = None  # later in-process runs must not see this job's config
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_groups_and_options(monkeypatch, tmp_path, capsys):
    code, out, _ = run_cli(monkeypatch, tmp_path, capsys, "--help")
    assert code == 0
    for line in ("model: ", "data: ", "optim: ", "sched: ", "reg: ", "trainer: "):
        assert line in out
    assert "cnn" in out and "digits" in out


def test_cfg_job_prints_the_composed_config(monkeypatch, tmp_path, capsys):
    code, out, _ = run_cli(monkeypatch, tmp_path, capsys, "model=cnn", "--cfg", "job")
    assert code == 0 and "dlrun.models.CNN" in out
    assert not (tmp_path / "outputs").exists()  # nothing ran


def _make_run(root: Path) -> Path:
    """A finished earlier run, whose files no failing command may touch."""
    from conftest import train

    return train(root / "earlier", "trainer.epochs=1")


BAD_INPUTS = [
    # (overrides, text the error must contain)
    (["optim.lr=fast"], "could not be converted to Float"),
    (["trainer.epochz=3"], "did you mean trainer.epochs"),
    (["model=cnnn"], "did you mean model=cnn"),
    (["model.hiden=[3]"], "did you mean model.hidden"),
    (["optim.lr=0"], "optim.lr=0.0 is out of range"),
    (["optim.lr=-1"], "optim.lr=-1.0 is out of range"),
    (["trainer.epochs=0"], "trainer.epochs=0 is out of range"),
    (["trainer.batch_size=0"], "trainer.batch_size=0 is out of range"),
    (["reg=dropout", "reg.dropout.p=1.0"], "reg.dropout.p=1.0 is out of range"),
    (["model.dropout=1.5"], "model.dropout=1.5 is out of range"),
    (["data.label_noise=-0.1"], "data.label_noise=-0.1 is out of range"),
    (["data.val_fraction=1.0"], "data.val_fraction=1.0 is out of range"),
    (["data.n_train=100000"], "data.n_train=100000 is larger than"),
    (["model=cnn", "data=sine"], "use model=mlp"),
    (["model=cnn", "model.channels=[8,8,8,8,8]", "model.padding=0", "model.pool=none"],
     "conv layer"),
    (["trainer.device=cuda:7"], "trainer.device=cuda:7"),
    (["trainer.resume=does/not/exist"], "no such run directory"),
    (["trainer.resume={empty}"], "holds no checkpoint"),
    (["trainer.resume={corrupt}"], "not a readable checkpoint"),
    (["trainer.resume={earlier}", "model.hidden=[7]"], "different model"),
    (["hydra.run.dir=/proc/dlrun-cannot-write"], "cannot write"),
    (["data=sine", "loss=cross_entropy"], "does not fit this dataset's regression task"),
    (["data=csv", "data.path={tmp}/missing.csv", "data.task=binary"], "no such file"),
    (["data=csv", "data.path={csv}", "data.target=lable", "data.task=binary"],
     "did you mean data.target=label"),
    (["data=csv", "data.path={csv}", "data.target=b", "data.task=binary"],
     "hold labels outside the class range"),
    (["data=csv", "data.path={csv_nan}", "data.target=label", "data.task=binary"],
     "hold NaN or infinite features"),
    (["data=csv", "data.path={csv_text}", "data.target=label", "data.task=binary"],
     "not a number"),
    # problem 5: a `_target_` that cannot be imported, a user's class that raises
    (["model._target_=nosuch.Module"], "model._target_=nosuch.Module cannot be imported"),
    (["optim._target_=nosuch.Adam"], "optim._target_=nosuch.Adam cannot be imported"),
    (["-cd", "{user}", "model=mine"], "usermodels.Bad(...) raised ValueError: width must be even"),
    # problem 4: suggestions from the whole search path (Hydra's groups, the user's -cd)
    (["hydra/launcher=jobib"], "did you mean hydra/launcher=joblib?"),
    (["-cd", "{user}", "model=mien"], "did you mean model=mine?"),
    # problem 7: a resumed run writes into its own directory only
    (["trainer.resume={earlier}", "hydra.run.dir={tmp}/other"], "writes only into the run it resumes"),
]


def _write_user_configs(root: Path) -> Path:
    """A user's config directory (`-cd`) with a model whose __init__ raises."""
    (root / "conf" / "model").mkdir(parents=True)
    (root / "conf" / "model" / "mine.yaml").write_text("_target_: usermodels.Bad\n")
    (root / "usermodels.py").write_text(
        "import torch\n\nclass Bad(torch.nn.Module):\n"
        "    def __init__(self, **kwargs):\n        raise ValueError('width must be even')\n")
    return root / "conf"


def _write_tables(root: Path) -> dict:
    """Small CSV files: a good one, one with a NaN feature, one with a text feature."""
    rows = [f"{i / 10},{i % 7},{i % 2}" for i in range(60)]
    tables = {"csv": rows, "csv_nan": rows[:3] + ["nan,1,0"] + rows[4:],
              "csv_text": rows[:5] + ["red,1,0"] + rows[6:]}
    paths = {}
    for name, body in tables.items():
        paths[name] = root / f"{name}.csv"
        paths[name].write_text("a,b,label\n" + "\n".join(body) + "\n")
    return paths


@pytest.fixture(scope="module")
def earlier(tmp_path_factory):
    return _make_run(tmp_path_factory.mktemp("runs"))


@pytest.mark.parametrize(("args", "expected"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_clear_error(monkeypatch, tmp_path, capsys, earlier, args, expected):
    empty = tmp_path / "empty"
    empty.mkdir()
    corrupt = tmp_path / "corrupt"
    (corrupt / "checkpoints").mkdir(parents=True)
    (corrupt / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")
    tables = _write_tables(tmp_path)
    user = _write_user_configs(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    args = [a.format(empty=empty, corrupt=corrupt, earlier=earlier, tmp=tmp_path, user=user, **tables)
            for a in args]
    before = {p: p.read_bytes() for p in earlier.rglob("*") if p.is_file()}

    code, out, err = run_cli(monkeypatch, tmp_path, capsys, *args, "trainer.progress=off")

    assert code != 0
    assert "Traceback" not in out + err
    assert err.startswith("dlrun: error: ")
    assert expected in err
    assert len(err.strip().splitlines()) == 1, err  # one line
    after = {p: p.read_bytes() for p in earlier.rglob("*") if p.is_file()}
    assert after == before  # an earlier run is never damaged
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("args", [["model=nosuchmodel"], ["optim=adamm"], ["trainer.epochs=abc"],
                                  ["model._target_=nosuch.Module"]])
def test_hydra_full_error_0_keeps_errors_one_line(monkeypatch, tmp_path, capsys, args):
    """Problem 6: Hydra shows tracebacks for HYDRA_FULL_ERROR=1 only, and so does dlrun."""
    code, out, err = run_cli(monkeypatch, tmp_path, capsys, *args, "trainer.progress=off",
                             full_error="0")
    assert code == 2 and "Traceback" not in out + err
    assert err.startswith("dlrun: error: ") and len(err.strip().splitlines()) == 1


def test_hydra_full_error_1_shows_the_traceback(monkeypatch, tmp_path, capsys):
    with pytest.raises(Exception, match="optim/adamm"):
        run_cli(monkeypatch, tmp_path, capsys, "optim=adamm", full_error="1")


def test_help_and_version_understand_config_dirs(monkeypatch, tmp_path, capsys):
    """Problem 9: `-cd DIR` before or after --help lists the user's options; --version is dlrun's."""
    user = _write_user_configs(tmp_path)
    for args in (["-cd", str(user), "--help"], ["--help", "-cd", str(user)]):
        code, out, err = run_cli(monkeypatch, tmp_path, capsys, *args)
        assert code == 0, err
        models = next(line for line in out.splitlines() if line.startswith("model: "))
        assert "mine" in models.split(": ")[1].split(", ") and "mlp" in models
    code, out, _ = run_cli(monkeypatch, tmp_path, capsys, "--version")
    import dlrun

    assert code == 0 and out.startswith(f"dlrun {dlrun.__version__} (Hydra ") and "torch " in out


def test_multirun_makes_one_directory_per_job(tmp_path):
    result = dlrun_command("-m", "optim=sgd,adam", "optim.lr=0.1,0.01", "trainer.epochs=1",
                           "data.n_train=200", "trainer.progress=off", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    jobs = sorted(p.parent for p in tmp_path.glob("outputs/multirun/*/*/*/.hydra"))
    assert [p.name for p in jobs] == ["0", "1", "2", "3"]
    # each job's TensorBoard runs are named by its overrides (trainer.progress, which changes
    # nothing computed, left out)
    assert [sorted(p.name for p in (job / "tb").iterdir()) for job in jobs] == [
        [f"data.n_train=200,optim.lr={lr},optim={optim},trainer.epochs=1"]
        for optim, lr in [("sgd", "0.1"), ("sgd", "0.01"), ("adam", "0.1"), ("adam", "0.01")]]
    overrides = set()
    for job in jobs:
        summary = json.loads((job / "summary.json").read_text())
        assert summary["status"] == "ok"
        overrides.add(tuple((job / ".hydra/overrides.yaml").read_text().split()))
    assert len(overrides) == 4


def test_quick_successive_runs_never_collide(tmp_path):
    result = dlrun_command("-m", "trainer.seed=1,2", "trainer.epochs=1", "data.n_train=100",
                           "trainer.progress=off", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for _ in range(2):
        result = dlrun_command("trainer.epochs=1", "data.n_train=100", "trainer.progress=off",
                               cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    runs = list(tmp_path.glob("outputs/runs/*/*"))
    assert len(runs) == 2


def test_resuming_a_sweep_job_reuses_its_directory(monkeypatch, tmp_path, capsys):
    code, _, err = run_cli(monkeypatch, tmp_path, capsys, "-m", "trainer.seed=1,2", "trainer.epochs=1",
                           "data.n_train=100", "trainer.progress=off", "diagnose=off")
    assert code == 0, err
    job = next(tmp_path.glob("outputs/multirun/*/*/0"))
    code, _, err = run_cli(monkeypatch, tmp_path, capsys, f"trainer.resume={job}", "trainer.epochs=2")
    assert code == 0, err
    rows = [json.loads(line) for line in (job / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert not (tmp_path / "outputs/runs").exists()  # no new run directory
    saved = (job / ".hydra/overrides.yaml").read_text()
    assert "trainer.seed=1" in saved and "trainer.resume" not in saved  # the original record


@pytest.mark.parametrize("args", [["--help"], ["model=cnn", "--cfg", "job"]])
def test_help_and_printed_config_never_import_torch(tmp_path, args):
    import subprocess

    probe = (
        "import sys; from dlrun import cli; sys.argv = ['dlrun', *sys.argv[1:]]\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO TORCH', file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", probe, *args], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert "NO TORCH" in result.stderr, result.stderr
    assert "model" in result.stdout


def test_remedy_and_resume_commands_carry_the_config_dir(monkeypatch, tmp_path, capsys):
    """Problem 3: a run composed with `-cd DIR model=tiny` prints remedies that start with
    `dlrun -cd DIR` and compose when pasted; resuming it needs no -cd typed again."""
    import shlex

    user = tmp_path / "conf"
    (user / "model").mkdir(parents=True)
    (user / "model" / "tiny.yaml").write_text("defaults:\n  - mlp\n  - _self_\nhidden: [4]\n")
    run = tmp_path / "run"
    code, _, err = run_cli(monkeypatch, tmp_path, capsys, "-cd", str(user), "model=tiny",
                           "trainer.epochs=2", "data.n_train=200", "trainer.progress=off",
                           f"hydra.run.dir={run}")
    assert code == 0, err
    remedies = json.loads((run / "diagnosis.json").read_text())["remedies"]
    assert remedies
    for remedy in remedies:
        assert remedy["command"].startswith(f"dlrun -cd {user} "), remedy["command"]
    pasted = shlex.split(remedies[0]["command"])[1:]
    code, out, err = run_cli(monkeypatch, tmp_path, capsys, *pasted, "--cfg", "job")
    assert code == 0, err
    code, _, err = run_cli(monkeypatch, tmp_path, capsys, f"trainer.resume={run}",
                           "trainer.epochs=3", "diagnose=off")
    assert code == 0, err
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3
