"""Schemathesis hooks for tests/service/test_contract.py (loaded via SCHEMATHESIS_HOOKS).

- Path parameters: three generated model names in four are swapped for a served model that
  supports the operation, so the fuzzing reaches the models and not only 404s.
- The allow-list: a schema-valid request may be refused (400/422) only for a rule that
  depends on the model (its family, classes, sizes) or ties two fields together, which JSON
  Schema cannot say. Each entry names its rule and the message that shows it; any other
  rejection of schema-valid data is reported.
"""

from __future__ import annotations

import json
import os
import re
import zlib

import schemathesis

# capability of each operation, and the served model that has it (set by the test)
MODELS: dict[str, str] = json.loads(os.environ.get("GANSERVE_TEST_MODELS", "{}"))
OPERATION_CAPABILITY = {"/conditional": "conditional", "/style-mix": "style-mix",
                        "/interpolate": "interpolate"}

ALLOWED_REJECTIONS: list[tuple[str, str, str]] = [
    ("unsupported_for_family", r"", "which operations a model supports depends on its family; "
     "the 400 names the families that do"),
    ("invalid_input", r"unknown class|class index \d+ out of range",
     "class names and counts are the model's"),
    ("invalid_input", r"expected \d+ numbers, got \d+", "latent length is the model's z/w dim"),
    ("invalid_input", r"style layer \S+ out of range",
     "the number of style layers is the model's num_ws"),
    ("invalid_input", r"give exactly one of (seed, z or w|row_seeds or row_sources|"
     r"col_seeds or col_sources)",
     "one-of across optional fields"),
    ("invalid_input", r"n=\d+ but \d+ seeds given", "n must equal the number of seeds"),
    ("invalid_input", r"seeds requested, the limit is|grid cells \(rows x cols\)",
     "a seed string's size is known once expanded; the grid is rows x cols"),
    ("invalid_input", r"seed must be in 0\.\.4294967295|runs backwards",
     "a seed-list pattern cannot bound a 10-digit number by 2^32-1 or order a range"),
    ("invalid_input", r"pixels, the limit is", "the response size is images x (res x scale)^2"),
    ("invalid_input", r"psi: give truncation_psi only", "both names of one query parameter"),
    ("invalid_input", r"explicit w needs space='w'", "w endpoints belong to space='w'"),
    ("invalid_input", r"beyond float32", "JSON numbers have no float32 bound"),
    ("invalid_input", r"class name cannot be empty", "a name of blanks (minLength counts them)"),
    ("invalid_input", r"cursor is not one this API gave out",
     "a page cursor is valid only as the API wrote it"),
    ("invalid_input", r"give exactly one of name \(a built-in dataset",
     "a dataset is named, an id or a path: one of three optional fields"),
    ("invalid_input", r"no dataset .* in the datasets folder|no class .*classes: |"
     r"must be relative to the datasets folder|no images left after narrowing",
     "which datasets, classes and images exist is the data dir's"),
    ("invalid_input", r"steps=\d+ is above GANSERVE_MAX_(FINE_TUNE|PROJECT)_STEPS|"
     r"n=\d+ is above GANSERVE_MAX_EVAL_SAMPLES|freeze_d=\d+: D has",
     "bounds that are settings or the model's depth"),
    ("invalid_input", r"no Inception extractor here|an evaluation compares against a whole "
     r"dataset|is a \w+ model; a \w+ fine-tune cannot|has classes the model does not|"
     r"has no labels; a conditional model",
     "what the host and the model have"),
    ("conflict", r"Idempotency-Key already used", "the key's first request decides"),
    ("invalid_input", r"image: not valid base64", "base64 is a string pattern JSON Schema "
     "states only as text; the bytes it holds are checked as an upload's are"),
    ("image_too_large", r"", "an image's pixel size is in its bytes"),
    ("invalid_input", r"unknown direction", "which directions exist is the version's"),
    ("invalid_input", r"has no w space", "a w latent belongs to a w-space family"),
    ("invalid_input", r"unknown form field|send the image as the form field",
     "a multipart body's parts are read by the route"),
    ("invalid_input", r"no dataset '[0-9a-f]{16}'", "which uploaded datasets exist is the "
     "data dir's"),
    ("invalid_input", r"webhooks are off here|is not in GANSERVE_WEBHOOK_ALLOWED_HOSTS|"
     r"does not resolve", "where webhooks may go is a setting (an allow-list)"),
    *[(code, r"", "an upload is checked by what its bytes hold (an archive, images, arrays), "
       "which a multipart schema cannot say")
      for code in ("unsupported_file", "invalid_archive", "empty_dataset", "not_an_image",
                   "image_type_mismatch", "corrupt_image", "bad_layout", "invalid_npz",
                   "pickled_npz", "unsafe_path", "duplicate_name", "nested_archive",
                   "invalid_form")],
]


# The Open Inference Protocol's infer body is a generic tensor list: which tensors a model
# takes (names, datatypes, shapes, element counts, binary sizes, one of seed/z/w) and which
# parameters it honours are the model's, stated in its metadata, not in the schema. Its
# errors are one string (no code): "protocol" stands for them here.
ALLOWED_REJECTIONS += [
    ("protocol", r"^(inputs|outputs|request\.parameters|truncation_psi|class|body|"
     r"Inference-Header-Content-Length)\b",
     "a protocol request's tensors are checked against the model's inputs and outputs"),
]


def allowed_rejection(body: str) -> str | None:
    """The reason a refusal of schema-valid input is legitimate, or None."""
    try:
        err = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return None
    if isinstance(err, str):                    # the Open Inference Protocol's shape
        err = {"code": "protocol", "message": err}
    for code, pattern, reason in ALLOWED_REJECTIONS:
        if err.get("code") == code and re.search(pattern, err.get("message", "")):
            return reason
    return None


@schemathesis.hook
def map_path_parameters(context, path_parameters):
    name = (path_parameters or {}).get("name")
    if name is None or not MODELS:
        return path_parameters
    path = context.operation.path if context.operation is not None else ""
    capability = next((c for suffix, c in OPERATION_CAPABILITY.items() if suffix in path),
                      "sample")
    if zlib.crc32(str(name).encode()) % 4:
        path_parameters["name"] = MODELS.get(capability, MODELS["sample"])
    return path_parameters


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Drop a 'schema-valid request rejected' finding when its rule is on the allow-list."""
    if getattr(failure, "code", "") == "ST202" and response is not None:
        return allowed_rejection(response.text) is None
    return True
