"""The research benchmark harness, from a checkout: ``python bench/run.py --quick`` (``--help`` lists all).

It lives here, not in the installed package: paired rounds against the
peers, the sgemm ceiling, host and device memory probes, other-load checks,
scaling sweeps and per-layer profiles are development tools. The installed
``gpuprop bench`` is the lean comparison a user needs.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # harness.*, then this checkout's gpuprop

from harness.cli import bench  # noqa: E402

if __name__ == "__main__":
    bench(prog_name="bench/run.py")
