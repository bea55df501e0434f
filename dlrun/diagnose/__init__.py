"""The optimization map: after every run, which branch it is on, why (in numbers), and what to type next.

`diagnose_run` (run.py) gathers evidence and walks `map.walk`, a pure function; probes
(references.py, probes.py, hessian.py) touch torch; remedies.py turns findings into
complete commands. `EpochMonitor` warns during training.
"""

from dlrun.diagnose.monitor import EpochMonitor
from dlrun.diagnose.run import diagnose_run

__all__ = ["EpochMonitor", "diagnose_run"]
