"""``python bench/run.py``: the research benchmark (paired rounds, ceilings, memory, scaling, profiles).

The installed ``gpuprop bench`` is the lean user bench (``gpuprop/bench``);
this is the development harness it grew out of, with every knob. Progress
lines go to stderr; the table to stdout, or with ``--json`` one JSON document
to stdout and the table to stderr.
"""

import json
import sys

import click

from gpuprop.cli.errors import debug_option


def _workload_names():
    from . import workloads

    return ", ".join(workloads.names())


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--device", type=click.Choice(["cpu", "gpu", "all"]), default="all", show_default=True,
              help="Devices to measure; all = the CPU, and the GPU when CuPy finds one.")
@click.option("--workload", "workload", multiple=True, metavar="NAME",
              help="Workload(s) to run, repeatable or comma-separated (default: all; --quick: a subset). "
                   "See --list.")
@click.option("--peers", default="torch,jax", show_default=True, metavar="torch,jax|none",
              help="Frameworks to compare with, where installed; torch on a GPU adds torch.compile, "
                   "'torch-compile' asks for it on the CPU too.")
@click.option("--repeats", type=click.IntRange(min=1), default=None,
              help="Timed repeats per figure (median taken); each framework times one repeat in turn "
                   "[default: 7, --quick: 3].")
@click.option("--quick", is_flag=True, help="Fewer repeats, shorter ones, a subset of the workloads.")
@click.option("--quick-cpu", is_flag=True, help="Quick settings for the CPU only (GPU machines: the GPU is the point).")
@click.option("--memory/--no-memory", "host_memory", default=None,
              help="Measure peak host memory in a fresh process per workload [default: on, off with --quick]. "
                   "Device memory is always measured.")
@click.option("--time-budget", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="After this many seconds, skip the remaining peers and memory probes (gpuprop still runs; "
                   "torch.compile, run last, is cut first).")
@click.option("--retry-busy", type=click.IntRange(min=0), default=None, metavar="N",
              help="Measure CPU figures again (up to N rounds) when other processes used the CPU meanwhile; "
                   "figures timed in turns with peers are not (that would unpair them) "
                   "[default: 2, --quick: 0].")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the JSON document here, updated after every record.")
@click.option("--scaling", is_flag=True,
              help="Instead: time per epoch vs batch size and vs width (MLP), as a markdown table.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="With --scaling: write the plot here (PNG; needs matplotlib).")
@click.option("--profile", is_flag=True,
              help="Instead: where gpuprop's step spends its time, per layer and phase, plus the hottest "
                   "functions (cProfile), for each chosen workload and device.")
@click.option("--list", "list_only", is_flag=True, help="List the workloads and exit.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON document on stdout; the table goes to stderr.")
@debug_option
def bench(device, workload, peers, repeats, quick, quick_cpu, host_memory, time_budget, retry_busy, out_path, scaling, plot,
          profile, list_only, as_json):
    """Benchmark training steps on each device against PyTorch and JAX.

    \b
    Examples:
      python bench/run.py --quick                # a few minutes on a small CPU
      python bench/run.py --device all --json > bench.json
      python bench/run.py --workload mlp,softmax --peers torch
      python bench/run.py --scaling --plot scaling.png
      python bench/run.py --profile --workload mlp --device cpu
    """
    from . import report, runner, workloads

    if list_only:
        for w in workloads.WORKLOADS.values():
            click.echo(f"{w.name:<9} {w.description}{'  [--quick]' if w.quick else ''}")
        return
    try:
        peer_names = runner.parse_peers(peers)
        workloads.select(workload, quick)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    human = sys.stderr if as_json else sys.stdout
    if profile:
        _profile(workloads.select(workload or ["softmax", "mlp"]), runner.devices_for(device), human)
        return
    if scaling:
        from . import scaling as scaling_mod

        doc = scaling_mod.run(devices=device, quick=quick, peers=peer_names)
        text = scaling_mod.markdown(doc)
        if plot:
            text += "\n\n" + scaling_mod.plot(doc, plot)
        click.echo(text, file=human)
        if as_json:
            click.echo(json.dumps(doc, indent=1))
        return
    run = runner.Run(devices=device, workload_names=workload, peers=peer_names, quick=quick, quick_cpu=quick_cpu,
                     repeats=repeats, host_memory=host_memory, time_budget=time_budget, out_path=out_path,
                     retry_busy=retry_busy)
    doc = run.run()
    m = doc["machine"]
    head = (f"gpuprop bench — {m['date']} — {m['cpu']} ({m['cores']} cores)"
            f"{'; GPU ' + m['gpu'] if m.get('gpu') else '; no GPU'} — python {m['python']}, numpy {m['numpy']} "
            f"({m.get('numpy_blas')}), torch {m.get('torch') or '-'}, jax {m.get('jax') or '-'}"
            f"{', cupy ' + m['cupy'] if m.get('cupy') else ''}")
    click.echo(head + "\n\n" + report.table(doc), file=human)
    if as_json:
        click.echo(json.dumps(doc, indent=1, default=runner._jsonable))


def _profile(chosen, devices, out):
    from . import profile as prof

    for dev in devices:
        for wl in chosen:
            if wl.kind != "step":
                continue
            b = prof.breakdown(wl, dev)
            click.echo(prof.format_breakdown(b) + "\n", file=out)
            click.echo(prof.hot_functions(wl, dev), file=out)


