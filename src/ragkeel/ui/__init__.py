"""The dashboard under ``/ui`` (issue 12): server-rendered pages over the trace store, the
feedback, readiness and the evaluation reports. No JavaScript; charts are inline SVG drawn on
the server; the one stylesheet ships in the package, so it works offline.

Layer: edge, just below ``api`` (``api/app.py`` mounts ``build_ui``); it takes the
``Container`` and plain callables (readiness, alerts) and imports nothing of ``api``.

Modules: ``app.py`` (routes, sign-in, same-origin POSTs), ``session.py`` (viewers and session
cookies), ``render.py`` (templates, Content-Security-Policy and other headers), ``traces.py``,
``overtime.py``, ``reports.py`` (what each page shows), ``charts.py`` (SVG layout),
``templates/``, ``static/ui.css``.
"""

from ragkeel.ui.app import PREFIX, build_ui

__all__ = ["PREFIX", "build_ui"]
