"""rwgui: restore photos with untrained networks (Deep Image Prior and random-weights loss priors)."""

import os

# torch's CPU kernels run on OpenMP threads, which by default spin while they wait for the next kernel. On a
# machine where another process is busy, a spinning thread takes the core the thread it waits for needs: a
# 96x96 step with 2 threads on 2 busy cores took 7.6 s spinning against 0.6 s waiting asleep
# (rwgui/bench/README.md, "Threads on a busy machine"). OpenMP reads this once, when torch loads it, so it is
# set here, before any rwgui module imports torch; a value the person set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
