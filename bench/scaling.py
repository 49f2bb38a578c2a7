"""Time per epoch vs batch size and vs width, on each device; writes a table and a plot into bench/.

    python bench/scaling.py [--device cpu|gpu|all] [--quick] [--peers torch|none] [--out-dir bench]

Writes ``scaling.md`` (markdown tables + where each device stops being
overhead-bound), ``scaling.json`` (every point, with machine info) and
``scaling.png`` (needs matplotlib; without it the table alone is written).
See ``bench/harness/scaling.py`` for the method.
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

from harness import scaling  # noqa: E402
from harness.runner import parse_peers  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="all", choices=["cpu", "gpu", "all"])
    ap.add_argument("--quick", action="store_true", help="fewer, shorter repeats")
    ap.add_argument("--peers", default="torch", help="torch, jax, torch,jax or none")
    ap.add_argument("--out-dir", default=HERE)
    args = ap.parse_args(argv)
    doc = scaling.run(args.device, quick=args.quick, peers=parse_peers(args.peers))
    os.makedirs(args.out_dir, exist_ok=True)
    m = doc["machine"]
    header = (f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores){'; ' + m['gpu'] if m.get('gpu') else '; no GPU'};"
              f" python {m['python']}, numpy {m['numpy']} ({m.get('numpy_blas')}), torch {m.get('torch') or '-'};"
              f" load average {m.get('load_before')} before, {m.get('load_after')} after.\n"
              f"Command: `python bench/scaling.py {' '.join(argv if argv is not None else sys.argv[1:])}`\n\n")
    text = header + scaling.markdown(doc)
    png = os.path.join(args.out_dir, "scaling.png")
    note = scaling.plot(doc, png)
    with open(os.path.join(args.out_dir, "scaling.md"), "w") as f:
        f.write(text + "\n\n" + note + "\n")
    with open(os.path.join(args.out_dir, "scaling.json"), "w") as f:
        json.dump(doc, f, indent=1)
    print(text + "\n\n" + note)


if __name__ == "__main__":
    main()
