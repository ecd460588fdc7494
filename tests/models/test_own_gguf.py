"""Issue 15, your own GGUF file (``generation.local.model_path``): checked before loading (it
exists, it is GGUF, its sha256 when pinned), named by its file stem wherever the model is named
(the local model, the served deployment, the price table, ``model-server``'s alias), the pinned
defaults unchanged. No model is loaded here: tests/gateway/test_own_gguf_model.py loads one."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragkeel.cli.main import app as cli
from ragkeel.container import LOCAL_DEPLOYMENT, Container, deployments_of
from ragkeel.errors import ConfigError, ModelChecksumError, ModelError, RagkeelError
from ragkeel.gateway.base import Usage
from ragkeel.gateway.providers.local import LocalChatModel
from ragkeel.models.gguf import DEFAULT_MODEL, MODELS, get_model, model_path, own_file, verify_file
from ragkeel.models.integrity import StampFile
from ragkeel.settings import load_settings

BLOB = b"GGUF" + bytes(range(256)) * 16  # the header is all verify_file reads of an unpinned file
MODELS_KEY_05B = "qwen2.5-coder-0.5b-instruct-q4_k_m"
assert MODELS_KEY_05B in MODELS


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "files" / "my-chat-model.Q4.gguf"
    path.parent.mkdir()
    path.write_bytes(BLOB)
    return path


def test_an_unpinned_file_must_exist_and_be_gguf(tmp_path: Path, gguf: Path) -> None:
    assert verify_file(own_file(gguf)) == gguf
    with pytest.raises(ModelError, match="does not exist") as missing:
        verify_file(own_file(tmp_path / "nowhere.gguf"))
    assert missing.value.code == "MODEL_MISSING" and "model_path" in str(missing.value)
    text = tmp_path / "notes.gguf"
    text.write_text("not a model")
    with pytest.raises(ModelError, match="not a GGUF file"):
        verify_file(own_file(text))


def test_a_pin_is_checked_and_remembered(tmp_path: Path, gguf: Path) -> None:
    digest = hashlib.sha256(BLOB).hexdigest()
    stamps = tmp_path / "models-dir-not-made-yet" / "verified-gguf.json"
    assert verify_file(own_file(gguf, sha256=digest, stamps=stamps)) == gguf
    assert StampFile(stamps).known(gguf, gguf.stat()) == digest
    with pytest.raises(ModelChecksumError) as wrong:
        verify_file(own_file(gguf, sha256="0" * 64, stamps=stamps))
    assert wrong.value.code == "MODEL_CHECKSUM" and digest in str(wrong.value)
    gguf.write_bytes(BLOB + b"changed")  # another size: the stamp no longer vouches for it
    with pytest.raises(ModelChecksumError):
        verify_file(own_file(gguf, sha256=digest, stamps=stamps))


def test_settings_name_the_model_by_its_file_stem(tmp_path: Path, gguf: Path) -> None:
    link = tmp_path / "linked-name.gguf"
    link.symlink_to(gguf)
    local = load_settings(generation={"local": {"model_path": str(link)}}).generation.local
    assert local.name == "linked-name" and local.model_path == link  # not the target's name
    assert load_settings().generation.local.name == DEFAULT_MODEL  # the pinned default stays
    pinned = load_settings(
        generation={"local": {"model_path": str(gguf), "sha256": "AB" * 32}}
    ).generation.local
    assert pinned.sha256 == "ab" * 32
    with pytest.raises(ConfigError, match="set model_path too"):
        load_settings(generation={"local": {"sha256": "ab" * 32}})
    with pytest.raises(ConfigError, match=r"generation\.local\.sha256"):
        load_settings(generation={"local": {"model_path": str(gguf), "sha256": "xyz"}})


def test_the_container_loads_and_names_your_file_everywhere(tmp_path: Path, gguf: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    model_path(models, get_model(MODELS_KEY_05B)).touch()  # installed (nothing is loaded here)
    settings = load_settings(
        home=tmp_path / "home",
        models={"dir": str(models)},
        generation={"local": {"model_path": str(gguf), "cheap_model": MODELS_KEY_05B}},
    )
    with Container(settings) as c:
        assert c.local_gguf().path == gguf and c.local_gguf().name == "my-chat-model.Q4"
        model = c.local_model
        assert isinstance(model, LocalChatModel) and model.name == "my-chat-model.Q4"
        assert not model.loaded  # constructing never loads
        cheap = c.local_cheap_model  # the pinned cheap tier beside it, one shared queue
        assert isinstance(cheap, LocalChatModel) and cheap.name == MODELS_KEY_05B
        assert cheap.queue is model.queue
    served = load_settings(
        home=tmp_path / "home",
        generation={"local": {"model_path": str(gguf), "base_url": "http://127.0.0.1:9/v1"}},
    )
    [deployment] = deployments_of(served)
    assert (deployment.name, deployment.model) == (LOCAL_DEPLOYMENT, "my-chat-model.Q4")
    with Container(served) as c:
        assert c.prices.cost("my-chat-model.Q4", Usage(10**6, 10**6)) == 0.0


def test_model_server_serves_your_file_under_its_name(
    tmp_path: Path, gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command up to its ``exec``: the checked file, the alias; ``os.execv`` (the process
    boundary) records the command line instead of replacing the test process."""
    from ragkeel.cli.model_server import missing_server_packages

    monkeypatch.setenv("RAGKEEL_GENERATION__LOCAL__MODEL_PATH", str(gguf))
    seen: list[list[str]] = []

    def execv(path: str, argv: list[str]) -> None:
        seen.append(argv)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execv", execv)
    monkeypatch.setenv("RAGKEEL_GENERATION__LOCAL__SHA256", "0" * 64)
    refused = CliRunner().invoke(cli, ["model-server"])
    assert isinstance(refused.exception, RagkeelError)
    assert refused.exception.code == "MODEL_CHECKSUM" and not seen  # checked before anything
    monkeypatch.delenv("RAGKEEL_GENERATION__LOCAL__SHA256")
    if missing_server_packages():
        pytest.skip("the model-server extra is not installed")
    done = CliRunner().invoke(cli, ["model-server", "--port", "8099"])
    assert done.exit_code == 0, done.output
    pairs = dict(zip(seen[0][3::2], seen[0][4::2], strict=True))
    assert pairs["--model"] == str(gguf) and pairs["--model_alias"] == "my-chat-model.Q4"
