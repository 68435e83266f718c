"""The one error type users see for a bad spec, and helpers that say *where*.

Every problem with a spec is raised as :class:`SpecError`, carrying the path inside the
spec (``model.layers[3].activation``), the value received, what would be valid, and a
"did you mean" suggestion for misspelled names.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable, Sequence

PathPart = str | int


def format_path(parts: Iterable[PathPart]) -> str:
    """Join path parts the way a user reads them: ``model.layers[3].units``.

    Example:
        >>> format_path(["model", "layers", 3, "units"])
        'model.layers[3].units'
    """
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<spec>"


def edit_distance(a: str, b: str) -> int:
    """Edits between two names: insertions, deletions, substitutions and swaps of two
    neighbouring letters, each counting 1 (optimal string alignment distance).

    Example:
        >>> edit_distance("adma", "adam"), edit_distance("adma", "adamax")
        (1, 2)
    """
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[-1]


def suggest(name: Any, valid: Iterable[str]) -> str | None:
    """The closest valid name to ``name``, or None when nothing is close.

    Typos rank by edit distance (a swapped pair of letters or a dropped letter counts one
    edit, case ignored), so ``adma`` suggests ``adam`` rather than ``adamax``; names too far
    apart for a typo fall back to difflib's similarity.

    Example:
        >>> suggest("adma", ["adam", "adamax", "sgd"])
        'adam'
    """
    if not isinstance(name, str) or not name or len(name) > 200:
        return None
    valid = [v for v in valid if isinstance(v, str)]
    allowed = 0 if len(name) <= 2 else 1 if len(name) <= 4 else 2 if len(name) <= 8 else 3
    lowered = name.lower()
    scored = []
    for v in valid:
        if abs(len(v) - len(name)) > allowed:
            continue
        d = edit_distance(lowered, v.lower())
        if d <= allowed:
            ratio = difflib.SequenceMatcher(None, name, v).ratio()
            scored.append((d, -ratio, v))
    if scored:
        return min(scored)[2]
    matches = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    if not matches:
        by_lower = {v.lower(): v for v in valid}
        matches = difflib.get_close_matches(lowered, list(by_lower), n=1, cutoff=0.6)
        matches = [by_lower[m] for m in matches]
    return matches[0] if matches else None


def safe_repr(value: Any) -> str:
    """``repr(value)`` that never fails: Python refuses to write integers of more than
    4,300 digits (and a user's object may have a broken ``__repr__``)."""
    try:
        return repr(value)
    except ValueError:
        if isinstance(value, int):
            return f"<an integer of about {int(value.bit_length() * 0.30103) + 1} digits>"
        return f"<{type(value).__name__}>"
    except Exception:  # noqa: BLE001 - a message must never fail to print
        return f"<{type(value).__name__}>"


def _short(value: Any, limit: int = 80) -> str:
    text = safe_repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def first_line(text: Any, limit: int = 300) -> str:
    """The first line of a docstring or an exception's message ("" / the exception's type
    name when there is none), cut to ``limit`` characters, for one-line messages."""
    body = (str(text) if text is not None else "").strip()
    if not body:
        return type(text).__name__ if isinstance(text, BaseException) else ""
    return body.splitlines()[0].strip()[:limit]


class SpecError(ValueError):
    """An invalid spec, or a spec that cannot be built, with the place it went wrong.

    Attributes:
        path: where in the spec, e.g. ``"model.layers[3].activation"``.
        reason: what is wrong, in words.
        value: the value received (omitted from the message when not given).
        valid: what would be valid (a list of names or a phrase).
        hint: a "did you mean" suggestion, when one is close.
    """

    _MISSING = object()

    def __init__(
        self,
        path: str | Sequence[PathPart],
        reason: str,
        *,
        value: Any = _MISSING,
        valid: Sequence[str] | str | None = None,
        hint: str | None = None,
        source: str | None = None,
    ) -> None:
        self.path = path if isinstance(path, str) else format_path(path)
        self.reason = reason
        self.value = None if value is SpecError._MISSING else value
        self.has_value = value is not SpecError._MISSING
        self.valid = valid
        self.hint = hint
        self.source = source
        self.errors: list[SpecError] = [self]
        super().__init__(self._render())

    def moved(self, path: str | Sequence[PathPart]) -> "SpecError":
        """A copy of this error at another path (same reason, value, valid names, hint)."""
        kept = {"value": self.value} if self.has_value else {}
        return SpecError(path, self.reason, valid=self.valid, hint=self.hint,
                         source=self.source, **kept)

    def under(self, prefix: str | Sequence[PathPart]) -> "SpecError":
        """A copy of this error, whose path is relative (``.units``, ``[2]`` or empty), put
        under ``prefix``: an error raised inside a part of the spec, placed in the whole.

        Example:
            >>> SpecError(".units", "must be positive").under(["model", "layers", 2]).path
            'model.layers[2].units'
        """
        base = prefix if isinstance(prefix, str) else format_path(prefix)
        base = "" if base == "<spec>" else base
        rel = "" if self.path in ("", "<spec>") else self.path
        if rel and not rel.startswith((".", "[")):
            rel = "." + rel
        return self.moved((base + rel if base else rel.lstrip(".")) or "<spec>")

    def reworded(self, reason: str) -> "SpecError":
        """This error with another reason (its message is rendered again)."""
        self.reason = reason
        self.args = (self._render(),)
        return self

    def _render(self) -> str:
        where = f"{self.source}: " if self.source else ""
        msg = f"{where}{self.path}: {self.reason}"
        if self.has_value and safe_repr(self.value) not in self.reason:
            msg += f" (received: {_short(self.value)})"
        if self.hint:
            msg += f"; did you mean {self.hint!r}?"
        if self.valid:
            if isinstance(self.valid, str):
                msg += f" (expected {self.valid})"
            else:
                names = list(self.valid)
                shown = ", ".join(names[:40]) + (", ..." if len(names) > 40 else "")
                msg += f" (expected one of: {shown})"
        return msg

    @classmethod
    def unknown_name(
        cls, path: str | Sequence[PathPart], kind: str, name: Any, valid: Iterable[str]
    ) -> "SpecError":
        """An unknown registry name, with a did-you-mean and the valid names."""
        valid = sorted(valid)
        return cls(
            path, f"unknown {kind} {_short(name)}", value=name, valid=valid,
            hint=suggest(name, valid)
        )


class SpecErrors(SpecError):
    """Several problems found at once (schema validation reports them all)."""

    def __init__(self, errors: Sequence[SpecError], source: str | None = None) -> None:
        self.errors = list(errors)
        first = self.errors[0]
        ValueError.__init__(self, self._render_all(source))
        self.path, self.reason, self.value = first.path, first.reason, first.value
        self.has_value, self.valid, self.hint = first.has_value, first.valid, first.hint
        self.source = source

    def _render_all(self, source: str | None) -> str:
        head = f"{source}: " if source else ""
        if len(self.errors) == 1:
            return head + str(self.errors[0])
        lines = [f"{head}{len(self.errors)} problems in the spec:"]
        lines += [f"  - {e}" for e in self.errors]
        return "\n".join(lines)


class SpecWarning(UserWarning):
    """A spec that is valid but probably not what its author wants (the linter's advice)."""


class DataError(ValueError):
    """Bad data: names the source, the column or feature, and an example row."""
