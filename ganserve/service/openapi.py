"""The served OpenAPI document: FastAPI's, plus what only the running service knows.

- the configured limits (``GANSERVE_MAX_*``) replace the schema's hard ceilings, so a client
  reading the document sees the bounds the server enforces (``scale`` <= 16, not 64);
- each ``{name}`` path parameter's example is a loaded model that supports the operation,
  so "Try it out" on the docs page runs as-is on whatever store is served.
The document is rebuilt when the set of loaded versions changes.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from fastapi import FastAPI

from ganserve.families import family
from ganserve.service.errors import ServiceError, is_protocol_path
from ganserve.service.schemas.inference import InferRequest
from ganserve.service.schemas.inversion import ProjectRequest
from ganserve.service.settings import Settings

JOB_SCHEMAS = {"FineTuneSpec", "EvaluateSpec", "ProjectSpec", "DatasetRef"}


def _cap(schema: dict[str, Any], limit: int) -> None:
    """Lower a property's ``maximum`` (numbers) or ``maxItems`` (lists) to ``limit``."""
    for branch in schema.get("anyOf", []):
        _cap(branch, limit)
    if "maximum" in schema:
        schema["maximum"] = min(schema["maximum"], limit)
    if schema.get("type") == "array":
        schema["maxItems"] = min(schema.get("maxItems", limit), limit)


def apply_limits(doc: dict[str, Any], settings: Settings) -> None:
    """The generation limits apply by field name to the generation schemas; the job bodies
    (whose ``steps``, ``n`` and ``limit`` mean other things) get their own."""
    limits, scoped = settings.request_limits(), settings.job_limits()
    for schema_name, schema in doc.get("components", {}).get("schemas", {}).items():
        caps = scoped.get(schema_name, {} if schema_name in JOB_SCHEMAS else limits)
        for name, prop in schema.get("properties", {}).items():
            if name in caps:
                _cap(prop, caps[name])
    for item in doc.get("paths", {}).values():
        for op in item.values():
            caps = settings.resource_limits((op.get("tags") or [""])[0])
            for param in op.get("parameters", []):
                if param.get("in") == "query" and param["name"] in caps:
                    _cap(param.get("schema", {}), caps[param["name"]])


# what a version has beyond its family's operations (an encoder, latent directions)
VERSION_CAPABILITIES = ("project", "edit")


def _example_model(capability: str, caps: dict[str, tuple[str, ...]], preferred: list[str]
                   ) -> str | None:
    """A loaded model whose default version supports ``capability`` (the documented example
    first)."""
    fits = [n for n, c in sorted(caps.items()) if capability == "any" or capability in c]
    if not fits and capability in VERSION_CAPABILITIES:
        fits = sorted(caps)             # its 409 says how to add what the version lacks
    return next((n for n in preferred if n in fits), fits[0] if fits else None)


def apply_job_examples(doc: dict[str, Any], loaded: dict[str, str],
                       caps: dict[str, tuple[str, ...]]) -> None:
    """The job bodies' examples name a loaded unconditional model (a conditional one would
    need its own class names in the dataset), the documented one if it is loaded; a
    projection's, one with an encoder where one is loaded."""
    fits = sorted(n for n, fam in loaded.items() if not family(fam).conditional)
    schemas = doc.get("components", {}).get("schemas", {})
    for schema in ("FineTuneSpec", "EvaluateSpec"):
        for example in schemas.get(schema, {}).get("examples", []):
            if fits and example.get("model") not in fits:
                example["model"] = fits[0]
    for example in schemas.get("ProjectSpec", {}).get("examples", []):
        name = _example_model("project", caps, [example.get("model")])
        if name is not None:
            example["model"] = name


def is_inference(path: str) -> bool:
    """The operations GANSERVE_INFERENCE_NEEDS_KEY guards: every /v1 one, and the protocol's
    model metadata, configuration and infer (not its health nor the server's metadata)."""
    return path.startswith("/v1/") or (path.startswith("/v2/models/")
                                       and not path.endswith("/ready"))


def needs_key(path: str) -> bool:
    """The operations an API key guards whenever keys are configured: jobs, datasets and
    model management (generation and model listing only with GANSERVE_INFERENCE_NEEDS_KEY)."""
    return path.startswith(("/v1/jobs", "/v1/datasets")) or (
        path.startswith("/v1/models/")
        and path.endswith(("/versions", "/default", "/versions/{version}")))


def apply_security(doc: dict[str, Any], settings: Settings) -> None:
    """The document states the auth this server enforces: none without a keys file; the
    bearer scheme on the guarded operations (the inference ones too when inference needs a
    key)."""
    for path, item in doc.get("paths", {}).items():
        guarded = settings.api_keys_file is not None and (
            needs_key(path) or (settings.inference_needs_key and is_inference(path)))
        for op in item.values():
            if not guarded:
                op.pop("security", None)
                for code in ("401", "403"):
                    op.get("responses", {}).pop(code, None)
    if settings.api_keys_file is None:
        doc.get("components", {}).pop("securitySchemes", None)


def apply_examples(doc: dict[str, Any], loaded: dict[str, str],
                   caps: dict[str, tuple[str, ...]]) -> None:
    apply_job_examples(doc, loaded, caps)
    for item in doc.get("paths", {}).values():
        for op in item.values():
            for param in op.get("parameters", []):
                capability = param.get("schema", {}).get("x-capability")
                if param.get("in") != "path" or capability is None:
                    continue
                name = _example_model(capability, caps, list(param.get("examples", {})))
                if name is not None:
                    param["examples"] = {name: {"value": name}}


def add_raw_body_schemas(doc: dict[str, Any]) -> None:
    """Bodies the routes read themselves (the protocol's infer takes JSON or binary tensors;
    project takes JSON or multipart) are referenced by name from ``openapi_extra``; their
    schemas join the components."""
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    for model in (InferRequest, ProjectRequest):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema


def apply_protocol_errors(doc: dict[str, Any]) -> None:
    """The Open Inference Protocol's paths answer a bad request with 400 in their own shape:
    FastAPI's default 422 (and its validation schemas, once nothing names them) go."""
    for path, item in doc.get("paths", {}).items():
        if is_protocol_path(path):
            for op in item.values():
                op.get("responses", {}).pop("422", None)
    used = json.dumps(doc.get("paths", {}))
    components = doc.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        if f"/{name}\"" not in used and f"/{name}\"" not in json.dumps(components):
            components.pop(name, None)


def _capabilities(registry: Any, name: str) -> tuple[str, ...]:
    """What the default version of ``name`` can do (none if it went away meanwhile)."""
    try:
        return tuple(registry.get(name).capabilities)
    except ServiceError:
        return ()


def served_openapi(app: FastAPI, settings: Settings) -> None:
    build = app.openapi                     # FastAPI's generator (it caches its result)
    cache: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        registry = getattr(app.state, "registry", None)
        loaded = {lv.name: lv.family for lv in registry.loaded()} if registry else {}
        caps = {name: _capabilities(registry, name) for name in loaded}
        key = tuple(sorted(caps.items()))
        if cache.get("key") != key:
            doc = copy.deepcopy(build())
            add_raw_body_schemas(doc)
            apply_protocol_errors(doc)
            apply_limits(doc, settings)
            apply_security(doc, settings)
            apply_examples(doc, loaded, caps)
            cache.update(key=key, doc=doc)
        return cache["doc"]

    app.openapi = openapi                   # type: ignore[method-assign]
