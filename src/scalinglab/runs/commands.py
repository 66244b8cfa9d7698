"""CLI commands for this area (filled in by the area's owner)."""

import typer


def register(app: typer.Typer) -> None:
    pass
