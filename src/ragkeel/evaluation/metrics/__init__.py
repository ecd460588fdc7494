"""Evaluation metrics: per-query scores and the statistics that compare them.

``retrieval`` (nDCG, recall, MRR, precision with trec_eval semantics), ``answers`` (SQuAD EM/F1,
reference containment, abstention, citations, format compliance), ``judges`` (the optional LLM
judge, its versioned prompts in ``prompts/``) and ``stats`` (paired sign-flip test, bootstrap
interval).
"""
