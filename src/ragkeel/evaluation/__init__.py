"""Evaluation: how good are ragkeel's answers and retrieval, and did a change make them worse?

By role, each sub-package depending only on the ones above it:

- ``cases``: the unit of work, an ``EvalCase`` in an ``EvalDataset`` (every loader makes them,
  every metric and report reads them).
- ``metrics/``: per-query scores (retrieval with trec_eval semantics, answers, the LLM judge and
  its prompts) and paired significance statistics. Pure functions.
- ``datasets/``: data set files to cases (BEIR, SQuAD-style JSON, CSV QA sets, ragkeel's own
  test-set JSONL, production traces), with checksums and seeded samples.
- ``reports/``: the ``results.json`` contract and its typed view, the HTML report, comparisons of
  two runs, the regression gate, TREC run files and the retrieval report.
- ``run/``: the runs themselves: ``eval run`` (config, loading, harness, scoring per case) and
  the BEIR retrieval run behind ``eval retrieval``.
"""
