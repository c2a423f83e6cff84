"""Entry point of the `foldgate` command: a click group whose subcommands live in
one module each. User errors (engine.errors.FoldgateError) end as one line
`Error: ...` with exit status 1; usage errors exit 2 (click's convention). An engine
error about a run setting names its flag: cli/options.py (setting_errors) maps it."""

from __future__ import annotations

import importlib
import sys

import click

from engine import __version__
from engine.errors import FoldgateError


class FoldgateGroup(click.Group):
    """Turns engine errors into click errors so no user error ends in a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FoldgateError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("Error: interrupted; nothing half-written was kept", err=True)
            sys.exit(130)


@click.group(cls=FoldgateGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="foldgate")
def app() -> None:
    """Validate trained PPO trading policies before they trade."""


def _register() -> None:
    for module_name, attr in [
        ("cli.data", "data"),
        ("cli.backtest", "backtest"),
        ("cli.gate", "gate"),
        ("cli.extract", "extract"),
        ("cli.validate", "validate"),
        ("cli.convert", "convert"),
        ("cli.check_features", "check_features"),
        ("cli.bench", "bench"),
        ("cli.demo", "demo"),
    ]:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # that command is not built yet
                continue
            raise
        app.add_command(getattr(module, attr))


_register()


def main() -> None:
    app(prog_name="foldgate")


if __name__ == "__main__":
    main()
