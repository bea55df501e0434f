#!/usr/bin/env bash
# Build a virtualenv for the Ray launcher on top of the main one, and optionally run its tests.
#
# hydra-ray-launcher 1.2.2 needs cloudpickle<3, while joblib>=1.6 (scikit-learn's, and the
# joblib launcher's) needs cloudpickle>=3. So Ray gets its own extra and its own virtualenv:
# this one sees every package of the main venv (torch, dlrun, hydra, ...) through a .pth
# file, and shadows only ray, cloudpickle<3 and joblib<1.6 with its own copies.
#
#   scripts/ray_venv.sh                      # build /tmp/dlrun-ray-venv from /work/venv
#   scripts/ray_venv.sh --test               # ... and run the Ray launcher test in it
#   BASE_VENV=.venv RAY_VENV=.venv-ray scripts/ray_venv.sh --test
set -euo pipefail
BASE_VENV=${BASE_VENV:-/work/venv}
RAY_VENV=${RAY_VENV:-/tmp/dlrun-ray-venv}
cd "$(dirname "$0")/.."

if [ ! -x "$RAY_VENV/bin/python" ]; then
    "$BASE_VENV/bin/python" -m venv "$RAY_VENV"
    base_site=$("$BASE_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    ray_site=$("$RAY_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    # addsitedir (not a bare path) so the base venv's own .pth files (editable dlrun) load too
    echo "import site; site.addsitedir('$base_site')" > "$ray_site/zz_dlrun_base_venv.pth"
fi
"$RAY_VENV/bin/pip" install -q "hydra-ray-launcher==1.2.2" "cloudpickle>=2.2,<3" "joblib>=1.3,<1.6"

if [ "${1:-}" = "--test" ]; then
    exec "$RAY_VENV/bin/python" -m pytest -m ray tests/test_sweep_ray.py -q
fi
