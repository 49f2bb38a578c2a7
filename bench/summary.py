"""Short summary of a harness document: ``python bench/summary.py BENCH.json [TESTS.log]`` (gpu_check.sh)."""

import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

if __name__ == "__main__":
    runpy.run_module("harness.report", run_name="__main__")
