"""The shipped Prometheus alerting rules (``deploy/prometheus/ragkeel-alerts.yml``) are valid
and do what their unit tests say (``ragkeel-alerts.test.yml``: steady traffic fires nothing,
each planted fault fires its alert, the monitor's own alerts are forwarded), checked with
``promtool`` from Debian's ``prometheus`` package. Not skipped when promtool is missing: CI
must install it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RULES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is not installed: install Debian's prometheus package "
            "(apt-get install prometheus) so the alerting rules can be checked"
        )
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=300
    )


def test_the_rules_are_valid() -> None:
    result = _run("check", "rules", "ragkeel-alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 11 rules found" in result.stdout


def test_the_rules_pass_their_unit_tests() -> None:
    result = _run("test", "rules", "ragkeel-alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
