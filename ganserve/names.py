"""What to say about a name nobody here knows: the near miss a person probably meant, and
what there is. One wording for models, classes, fields and flags, on the CLI as in the API."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` most probably misspells (case aside), or None."""
    by_lower = {k.lower(): k for k in known}
    match = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[match[0]] if match else None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """'; did you mean 'X'?' for a near miss, else ''."""
    guess = closest(name, known)
    return f"; did you mean {guess!r}?" if guess else ""


def choices(noun: str, name: str, known: Iterable[str]) -> str:
    """"; did you mean 'Sneaker'? classes: a, b" -- the tail of an unknown-name message."""
    known = list(known)
    plural = noun + ("es" if noun.endswith("s") else "s")
    there = f"{plural}: {', '.join(known)}" if known else f"there are no {plural}"
    hint = did_you_mean(name, known)
    return f"{hint} {there}" if hint else f"; {there}"


def unknown_name(noun: str, name: str, known: Iterable[str]) -> str:
    """"no model named 'fashion-dcgn'; did you mean 'fashion-dcgan'? models: a, b, c"."""
    return f"no {noun} named {name!r}{choices(noun, name, known)}"
