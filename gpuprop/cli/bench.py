"""`gpuprop bench`: training-step speed on each device beside PyTorch and JAX (measuring: ``gpuprop.bench``).

Progress lines go to stderr; the table to stdout, or with ``--json`` the JSON
document to stdout and the table to stderr.
"""

import json
import os
import sys

import click

from .errors import debug_option


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--device", type=click.Choice(["cpu", "gpu", "all"]), default="all", show_default=True,
              help="Devices to measure; all = the CPU, and the GPU when CuPy finds one.")
@click.option("--workload", "workload", multiple=True, metavar="NAME",
              help="Workload(s), repeatable or comma-separated [default: all; --quick: softmax, mlp, cnn]. See --list.")
@click.option("--peers", default="torch,jax", show_default=True, metavar="torch,jax|none",
              help="Frameworks to compare with, where installed; torch on a GPU adds torch.compile, "
                   "'torch-compile' asks for it on the CPU too.")
@click.option("--repeats", type=click.IntRange(min=1), default=None,
              help="Timed repeats per figure, the median taken [default: 7; --quick: 3].")
@click.option("--quick", is_flag=True,
              help="Three workloads, 3 repeats of at least 0.05 s each instead of 7 of 0.25 s: a rough figure.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the JSON document here (atomically).")
@click.option("--list", "list_only", is_flag=True, help="List the workloads and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON document on stdout; the table goes to stderr.")
@debug_option
def bench(device, workload, peers, repeats, quick, out_path, list_only, as_json):
    """Benchmark training steps on each device against PyTorch and JAX.

    \b
    Examples:
      gpuprop bench --quick --device cpu
      gpuprop bench --workload mlp,cnn --peers torch --json > bench.json

    The research harness (paired rounds, sgemm ceiling, memory, scaling,
    per-layer profiles) is bench/run.py in the source tree.
    """
    from ..bench import run, workloads

    if list_only:
        for w in workloads.WORKLOADS.values():
            click.echo(f"{w.name:<9} {w.description}{'  [--quick]' if w.quick else ''}")
        return
    try:
        peer_names = run.parse_peers(peers)
        workloads.select(workload, quick)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    doc = run.run(devices=device, workload_names=workload, peers=peer_names, quick=quick, repeats=repeats)
    m = doc["machine"]
    head = (f"gpuprop bench — {m['date']} — {m['cpu']} ({m['cores']} cores){'; GPU ' + m['gpu'] if m['gpu'] else ''}"
            f" — python {m['python']}, numpy {m['numpy']}, torch {m['torch'] or '-'}, jax {m['jax'] or '-'}")
    click.echo(head + "\n\n" + run.table(doc), file=sys.stderr if as_json else sys.stdout)
    text = json.dumps(doc, indent=1)
    if out_path:
        tmp = f"{out_path}.tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, out_path)
    if as_json:
        click.echo(text)
