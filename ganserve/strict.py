"""Strict request-body building blocks shared by the API's schemas and the job specs.

Bodies refuse unknown fields and coercions (``false`` is not a number, ``"12"`` is not an
int) but, as JSON Schema does, take ``3.0`` as the integer 3.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _json_int(v: object) -> object:
    """JSON Schema's integer: 3 and 3.0 are integers; true, "3" and 3.5 are not."""
    if isinstance(v, float) and not isinstance(v, bool) and v.is_integer():
        return int(v)
    return v


def Int(ge: int, le: int, **field: Any) -> Any:
    """A strict int in [ge, le] that also takes an integral JSON number (3.0), as JSON Schema
    does. (The bounds must sit inside, before the converter, to reach the JSON schema.)"""
    return Annotated[int, Field(ge=ge, le=le, **field), BeforeValidator(_json_int)]


FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)
