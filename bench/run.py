"""Run ``gpuprop bench`` from a source checkout: ``python bench/run.py --quick`` (same options).

The benchmark itself lives in ``gpuprop/benchmarks`` so that the installed
``gpuprop bench`` works from a wheel; this script only puts the checkout on
the import path first.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gpuprop.cli.bench import bench

if __name__ == "__main__":
    bench(prog_name="bench/run.py")
