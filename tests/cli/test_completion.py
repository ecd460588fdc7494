"""Issue 15: shell completion (typer's) and ``--version``, from the source tree. The same
completion through bash with the installed ``ragkeel`` command: ``tests/distribution/test_wheel.py``.

``--show-completion SHELL`` takes the shell as a value only when typer's shell detection is off
(``_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION``); a user's ``ragkeel --show-completion``
detects the shell it runs in. The program name is ``ragkeel`` even under ``python -m ragkeel``."""

from __future__ import annotations

import os
import subprocess
import sys

import ragkeel


def _ragkeel(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ragkeel", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_show_completion_bash_prints_the_script_for_the_ragkeel_command() -> None:
    done = _ragkeel("--show-completion", "bash", _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")
    assert done.returncode == 0, done.stderr
    script = done.stdout
    assert "_RAGKEEL_COMPLETE=complete_bash" in script
    assert script.strip().endswith("complete -o default -F _ragkeel_completion ragkeel"), script


def test_the_completion_protocol_completes_commands_and_options() -> None:
    """What the script's function asks the command (bash's words and the cursor's index)."""
    commands = _ragkeel(
        _RAGKEEL_COMPLETE="complete_bash", COMP_WORDS="ragkeel coll", COMP_CWORD="1"
    )
    assert commands.stdout.split() == ["collections"], commands.stderr
    options = _ragkeel(
        _RAGKEEL_COMPLETE="complete_bash", COMP_WORDS="ragkeel serve --wor", COMP_CWORD="2"
    )
    assert options.stdout.split() == ["--workers"], options.stderr


def test_version_is_the_package_version() -> None:
    done = _ragkeel("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"ragkeel {ragkeel.__version__}\n"
