"""The follow benchmark: `dlrun -m follow=on <case>` from every non-`good` scenario of the
diagnosis benchmark and from the five scenario presets, 4 rounds of width 3 at most.

    python scripts/follow_bench.py                         # every case, the basic launcher
    python scripts/follow_bench.py --launcher stacked      # the same through hydra/launcher=stacked
    python scripts/follow_bench.py --only moons            # cases whose name contains "moons"
    python scripts/follow_bench.py --reverse --resume      # continue a run, last case first

Each case is one in-process `dlrun -m follow=on ...` (as the command line runs it); its
follow.json says whether the walk reached `good`, after how many rounds and runs, and why
it stopped. Results go to scripts/bench-results/follow-<launcher>-<date>.json, with the
rate over all cases and a markdown table for the README.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diagnosis_bench import QUIET, RESULTS, SCENARIOS  # noqa: E402

PRESETS = ("good", "model_bias", "optimization", "overfitting", "mismatch")


@dataclass
class Case:
    name: str
    start: str  # the verdict the scenario (or preset) is meant to get
    overrides: tuple[str, ...]


@dataclass
class Walked:
    case: str
    start: str
    reached_good: bool = False
    first_verdict: str | None = None
    stop: str | None = None
    rounds: int = 0
    runs: int = 0
    wall_s: float = 0.0
    path: str = ""  # the verdicts of the runs the walk continued from
    reason: str = ""
    command: str = ""
    error: str | None = None


def cases() -> list[Case]:
    presets = [Case(f"experiment={p}", p, (f"experiment={p}",)) for p in PRESETS]
    scenarios = [Case(s.name, s.verdict, s.overrides) for s in SCENARIOS if s.verdict != "good"]
    return presets + scenarios


def follow(case: Case, sweep: Path, launcher: str | None) -> Walked:
    """One walk, in this process, as `dlrun -m follow=on <case> ...` runs it."""
    from hydra.core.global_hydra import GlobalHydra

    from dlrun import cli

    walked = Walked(case.name, case.start)
    argv = ["dlrun", "-m", "follow=on", *case.overrides, *QUIET, f"hydra.sweep.dir={sweep}"]
    argv += [f"hydra/launcher={launcher}"] if launcher else []
    started = time.perf_counter()
    saved = sys.argv
    try:
        sys.argv = argv
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            cli.main()
    except (Exception, SystemExit) as error:  # a crash is a result too (dlrun exits 2 or 3)
        if isinstance(error, SystemExit) and error.code not in (2, 3):
            raise  # stopped from outside (SIGTERM, Ctrl-C): no result
        walked.error = f"{type(error).__name__}: {' '.join(str(error).split())}"[:300]
    finally:
        sys.argv = saved
        GlobalHydra.instance().clear()
    walked.wall_s = time.perf_counter() - started
    try:
        record = json.loads((sweep / "follow.json").read_text())
    except OSError:
        walked.error = walked.error or "no follow.json"
        return walked
    bases = [record["start"], *(next(t for t in r["tried"] if t["job"] == r["chosen_job"])
                                for r in record["rounds"] if r["chosen_job"] is not None)]
    walked.reached_good, walked.stop = record["reached_good"], record["stop"]
    walked.first_verdict = record["start"]["verdict"]
    walked.rounds = sum(1 for r in record["rounds"] if r["tried"])
    walked.runs, walked.reason, walked.command = record["runs"], record["reason"], record["command"]
    walked.path = " → ".join(str(b["verdict"] or "failed") for b in bases)
    return walked


def table(results: list[Walked]) -> str:
    lines = ["| case | starts | path | good | rounds | runs | wall |", "|---|---|---|---|---|---|---|"]
    for r in results:
        good = "yes" if r.reached_good else f"no ({r.stop})"
        lines.append(f"| {r.case} | {r.start} | {r.error or r.path} | {good} | {r.rounds} | "
                     f"{r.runs} | {r.wall_s:.0f} s |")
    return "\n".join(lines)


def score(results: list[Walked]) -> dict:
    broken = [r for r in results if r.start != "good"]
    return {
        "reached_good": sum(r.reached_good for r in results), "of": len(results),
        "rate": sum(r.reached_good for r in results) / max(1, len(results)),
        "non_good_starts_reached": sum(r.reached_good for r in broken), "non_good_starts": len(broken),
        "rounds_mean_when_good": (sum(r.rounds for r in results if r.reached_good)
                                  / max(1, sum(r.reached_good for r in results))),
        "wall_s_total": sum(r.wall_s for r in results),
        "not_good": {r.case: r.error or r.reason for r in results if not r.reached_good},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="the cases whose name contains this")
    parser.add_argument("--launcher", help="a hydra/launcher option (default: basic)")
    parser.add_argument("--out", type=Path, help="JSON results (default: bench-results/)")
    parser.add_argument("--reverse", action="store_true",
                        help="the cases last first (a second process can share the work)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the cases that --out already holds, run the rest")
    args = parser.parse_args(argv)
    chosen = [c for c in cases() if args.only is None or args.only in c.name]
    chosen = chosen[::-1] if args.reverse else chosen
    launcher = args.launcher or "basic"
    out = (args.out or RESULTS / f"follow-{launcher}-{datetime.date.today()}.json").resolve()
    done = {r["case"]: Walked(**r) for r in _earlier(out)} if args.resume else {}
    results = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)  # the walks' own outputs/ (none expected) stay out of the repo
        for i, case in enumerate(chosen):
            walked = done.get(case.name) or follow(case, Path(scratch) / f"case{i}", args.launcher)
            results.append(walked)
            print(f"{walked.case}: {'good' if walked.reached_good else 'NOT good'} after "
                  f"{walked.rounds} round(s), {walked.runs} runs, {walked.wall_s:.0f} s"
                  f"{' ERROR ' + walked.error if walked.error else ''}", file=sys.stderr, flush=True)
            if not args.only or args.out:  # kept after every case: a long benchmark can resume
                _write(out, launcher, results, load)
    results.sort(key=[c.name for c in cases()].index)
    s = _write(out, launcher, results, load) if not args.only or args.out else score(results)
    print(table(results))
    print(f"\nreached good: {s['reached_good']}/{s['of']} ({100 * s['rate']:.0f}%)")
    for case, why in s["not_good"].items():
        print(f"  not good: {case}: {why}")
    return 0


def _earlier(out: Path) -> list[dict]:
    try:
        return json.loads(out.read_text())["results"]
    except (OSError, ValueError, KeyError):
        return []


def _write(out: Path, launcher: str, results: list[Walked], load: float) -> dict:
    s = score(results)
    s["load_average_1min"] = {"start": load, "end": os.getloadavg()[0]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"launcher": launcher, "score": s,
                               "results": [asdict(r) for r in results]}, indent=1) + "\n")
    return s


if __name__ == "__main__":
    sys.exit(main())
