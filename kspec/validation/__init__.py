"""Validation of specs in one place: schema, then search spaces, then the linter.

Above :mod:`kspec.spec` (the schema, plain data) and below everything that builds or trains;
TensorFlow-free.

Example:
    >>> from kspec.validation import load_spec
    >>> load_spec("specs/quickstart.yaml").name
    'quickstart'
"""

from kspec.validation.load import load_spec, missing_files, validate
from kspec.validation.spaces import SearchPlan, SearchSpaceNotice, load_search, raw_spec

__all__ = ["SearchPlan", "SearchSpaceNotice", "load_search", "load_spec", "missing_files",
           "raw_spec", "validate"]
