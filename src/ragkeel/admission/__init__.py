"""Admission: what decides whether a request may start, before retrieval and before any model
call. Plain Python, no HTTP types: the API (``api/admission.py``) reads the tenant from the
request and sheds load in an ASGI middleware; ``Container.admission`` builds the gates from
``Settings`` (nothing here reads them).

Layout: ``gates.py`` (``Admission``: the gates together; ``Admitted``; the tenant from header
values; the token estimate), ``tenant_limits.py`` (``TenantLimiter``: requests, tokens and cost
per tenant), ``load_shedder.py`` (``LoadShedder``: answers in flight; also the local model's
slots).

Where it sits: in the domain layer, beside ``ingestion`` and ``retrieval``, above ``gateway``.
It raises the gateway's errors (``RateLimitedError``, ``ModelBusyError``: their class gives the
HTTP status), asks the local model how long a busy queue should wait (``BUSY_RETRY_AFTER_S``)
and reads each tenant's daily spend from ``gateway/accounts.py``. ``CostAccounts`` stays in the
gateway for now: the gateway's ``BudgetChatModel`` reserves and settles every model call against
it (the per-call budget policy), while admission only asks whether anything is left today, so
moving it here would make ``gateway`` import ``admission`` and ``admission`` import ``gateway``.
Once the gateway's error classes join the one core error tree (``ragkeel/errors.py``), the
accounts can move here and ``admission`` can sit below ``gateway`` with nothing pointing up.
"""
