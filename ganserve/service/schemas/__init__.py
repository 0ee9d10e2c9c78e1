"""The HTTP request and response bodies, one module per resource (generate, models, health,
jobs, datasets), with the examples the OpenAPI page runs as-is.

Request bodies are strict (``false`` is not a seed, ``"12"`` is not an int, ``0`` is not a
boolean) and refuse unknown fields; numbers a client controls carry bounds in the schema, and
the configured limits (``GANSERVE_MAX_*``) are written into the served OpenAPI document.
The job request bodies (``FineTuneSpec``, ``EvaluateSpec``) are defined in the core
(``ganserve.jobs.specs``), because the worker and the CLI validate with the same classes;
``ganserve.service.schemas.jobs`` names them with the job's response bodies.
"""
