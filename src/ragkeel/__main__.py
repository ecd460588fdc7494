"""`python -m ragkeel` runs the CLI."""

from ragkeel.cli.main import run

run()
