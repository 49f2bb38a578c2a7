"""How the CLI reports failures: one ``error: ...`` line and exit 1; a traceback only with --debug.

``--debug`` may be given to the group (``gpuprop --debug train``) or to any
subcommand; either sets a flag in ``ctx.meta``, which click shares between a
group's context and its subcommands' contexts.
"""

import sys
import traceback

import click

from ..errors import GpupropError

DEBUG_KEY = "gpuprop.debug"
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


def _set_debug(ctx, param, value):
    if value:
        ctx.meta[DEBUG_KEY] = True


def debug_option(f):
    """``--debug`` on a command: show tracebacks."""
    return click.option("--debug", is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
                        help="Show full tracebacks on errors.")(f)


def debugging(ctx):
    return bool(ctx.meta.get(DEBUG_KEY))


def is_out_of_memory(exc):
    """NumPy's MemoryError, or CuPy's OutOfMemoryError (matched by name: cupy may not be installed)."""
    return isinstance(exc, MemoryError) or any(c.__name__ == "OutOfMemoryError" for c in type(exc).__mro__)


def message_for(exc):
    """The one line (or short block) a user sees for ``exc``."""
    if is_out_of_memory(exc):
        first = str(exc).strip().splitlines()
        detail = f" ({first[0][:160]})" if first else ""
        return f"out of memory{detail}: try a smaller --batch-size or a smaller model"
    if isinstance(exc, GpupropError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename:  # a path the user gave cannot be written or read
        return f"{exc.filename}: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc} (this looks like a bug in gpuprop; rerun with --debug for the traceback)"


def report(exc, ctx):
    """Print ``exc`` for the user and exit 1 (130 for Ctrl-C outside training)."""
    if debugging(ctx):
        traceback.print_exception(exc, file=sys.stderr)
    from ..distributed.world import abort_if_parallel, explain, prefix  # under MPI: which rank; stop the others

    if isinstance(exc, KeyboardInterrupt):
        click.echo(f"{prefix()}interrupted", err=True)
        abort_if_parallel(EXIT_INTERRUPTED)
        ctx.exit(EXIT_INTERRUPTED)
    click.echo(f"error: {prefix()}{explain(exc) or message_for(exc)}", err=True)
    abort_if_parallel(1)
    ctx.exit(1)


class Group(click.Group):
    """A click group that turns library errors into ``error: ...`` lines (see the module doc)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - the CLI's last line of defence
            report(exc, ctx)
