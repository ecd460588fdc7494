"""Evaluation outputs and what reads them.

``results`` is the ``results.json`` contract (schema ``ragkeel.eval.results/1``) with its writer
and reader, ``results_view`` the typed view comparisons use; ``html`` renders the self-contained
HTML report (template in ``templates/``); ``compare`` / ``compare_table`` compare two runs and
show it; ``gate`` decides whether the current run regressed against a baseline. ``trec`` writes
and reads TREC run files, ``retrieval_report`` the per-mode JSON report and table of the BEIR
retrieval run.
"""
