"""The application layer: the commands (``scripts/*.py`` and the ``resumen-*`` console scripts are doors into these
modules), run selection and resume decisions, the server. Importing it sets how torch's idle CPU threads wait
(``choose_openmp_waiting``), which must happen before torch starts them."""

from __future__ import annotations

import os

# How long an idle OpenMP thread of torch spins before it sleeps, set before torch loads (OpenMP reads it once, at
# start). libgomp's default spins about 300,000 times: on a machine busy with other work those spins take the cores
# from the work itself. A 3-epoch demo fit on a 2-core EPYC, samples/s idle and beside two busy processes:
#   libgomp's default          269 idle, 27-60 busy
#   GOMP_SPINCOUNT=100000      270 idle, 111-120 busy   <- chosen: as fast idle, 2-4x faster busy
#   OMP_WAIT_POLICY=PASSIVE    166 idle, 130-140 busy
# Choosing by the load average failed: it lags by a minute, so make demo's own fit made its test look busy.
# A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
SPIN_COUNT = "100000"


def choose_openmp_waiting(environ: dict[str, str] | os._Environ = os.environ) -> bool:
    """Set ``GOMP_SPINCOUNT`` for this command unless the user set how threads wait; True when it was set."""
    if "OMP_WAIT_POLICY" in environ or "GOMP_SPINCOUNT" in environ:
        return False
    environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    return True


choose_openmp_waiting()
