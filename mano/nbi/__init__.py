"""The NFVO's northbound interface: ETSI GS NFV-SOL 005 over HTTP (FastAPI, uvicorn).

Layering, top to bottom:

- ``app``: the FastAPI application, its middleware and the one exception handler that
  turns every error into a SOL013 ProblemDetails body; ``routes``: the routes (thin:
  validate, call one method, answer); ``web``: what routes share (ProblemDetails, the
  SOL013 list query, the token dependencies);
- ``catalogue`` (NSD and VNF package management) and ``lcm`` (NS instances, LCM operation
  occurrences, the worker threads that run operations): SOL005 resources as JSON dicts,
  computed from the NFVO's records plus the NBI's own (``records``);
- ``auth`` (clients, projects, OAuth 2.0 tokens), ``notify`` (subscriptions and
  notifications), ``metrics`` (Prometheus);
- ``client``: the SOL005 client the ``testbed`` CLI uses (httpx);
- ``sol013``: filters, attribute selectors and paging, pure functions;
- ``models``: pydantic models of the requests and resources (the OpenAPI document);
- ``server``: the NFVO process of ``testbed up`` (``python -m mano.nbi.server``).

The NBI reaches the NFVO only through its public methods and its store's reads; the NFVO
knows nothing of the NBI.
"""
