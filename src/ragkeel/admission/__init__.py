"""Admission: what decides whether a request may start, before retrieval and before any model
call. Plain Python, no HTTP types: the API (``api/admission.py``) reads the tenant from the
request and sheds load in an ASGI middleware; ``Container.admission`` builds the gates from
``Settings`` (nothing here reads them).

Layout: ``gates.py`` (``Admission``: the gates together; ``Admitted``; the tenant from header
values; the token estimate), ``tenant_limits.py`` (``TenantLimiter``: requests, tokens and cost
per tenant), ``load_shedder.py`` (``LoadShedder``: answers in flight; also the local model's
slots), ``stream_limits.py`` (``StreamLimiter``: streamed answers open per tenant),
``request_limits.py`` (``Limits``: the largest body and the longest question a request brings),
``accounts.py`` (``CostAccounts``: each tenant's reserved and spent cost per UTC day),
``redis_accounts.py`` (``RedisCostAccounts``: the same accounts in Redis, shared by replicas,
with ``redis.url``; the limiter's windows go to Redis then too: ``tenant_limits.shared_storage``).

Where it sits: below the gateway, above only the core (errors, clock, ``shared_state``). The
gateway's ``BudgetChatModel`` reserves and settles every model call against the ``Accounts``; the tenant
limiter only asks whether anything is left today. Admission raises errors of the core tree
(``RateLimitedError``, ``TooManyStreamsError``, ``ModelBusyError``: their class gives the HTTP
status) and imports nothing
of the gateway.
"""
