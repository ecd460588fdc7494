"""Evaluation runs.

``eval run CONFIG``: ``config`` (the YAML config), ``loading`` (a config entry to a data set in
its own collection), ``harness`` (ingest, ask every case concurrently, write ``results.json``)
and ``scoring`` (one case to one results row). ``eval retrieval --beir DIR``: ``retrieval``
(index a BEIR corpus, run its queries, score, write the TREC run and reports).
"""
