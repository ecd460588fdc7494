"""Evaluation data sets: every source format becomes an ``EvalDataset`` of ``EvalCase``s.

``beir`` reads a BEIR folder in place; ``loaders`` turns BEIR, SQuAD-style JSON and CSV QA sets
into cases; ``testset`` is ragkeel's own JSONL format; ``trace_cases`` turns a production trace
into a test case; ``files`` holds what every loader shares (checksums, seeded samples, slugs,
atomic writes, error messages naming file and line).
"""
