"""Ingestion as a job system (issue 13): documents parsed and embedded by worker processes,
not inside the HTTP request or the CLI process.

- ``model.py`` — what a job is (``JobSpec``: whose, which collection, which files, with which
  ACL), what a caller sees of it (``JobView``: its state, attempts, the per-file report of its
  last run), the ``JobQueue`` protocol the edges use, and how a run's failures are classified
  (``transient_failures``: an unreachable embedder or a busy store is retried, a bad file is not).
  No third-party import: the API and the CLI import it whether or not the queue is on.
- ``procrastinate_queue.py`` — the one engine, procrastinate on PostgreSQL (imported only when
  ``ingestion.queue: procrastinate``): the job records table next to procrastinate's own
  tables, deferring, the ``ragkeel.ingest`` task with its retry policy (exponential backoff,
  then the dead-letter state ``dead``), stalled-job recovery from the workers' heartbeats, and
  the worker loop with its SIGTERM behaviour.

The queue decides when and where a job runs; the ingestion pipeline does the work, through a
runner the worker command composes (``cli/worker.py``): the documents' content hashes make a
re-run after a crash or a retry write nothing twice.
"""
