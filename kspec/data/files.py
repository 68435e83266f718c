"""Opening data files: CSV tables and NPZ archives, with one clear error per kind of damage.

Whatever a file holds (nothing, a row with a stray delimiter, Latin-1 text, a pickle, half a
zip archive), the reader raises a :class:`kspec.DataError` that names the file, what is
wrong and where (``row 1 (line 3 of the file)``), never a pandas or NumPy traceback. NPZ
archives are opened with ``allow_pickle=False``: no code runs from a data file.
"""

from __future__ import annotations

import contextlib
import re
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from kspec.data.checks import row_phrase
from kspec.errors import DataError, SpecError, first_line


def read_table(path: str | Path, *, sep: str = ",", dtype: Any = None,
               encoding: str = "utf-8"):
    """A CSV file as a DataFrame, with one clear :class:`DataError` for each way a file can
    be broken: empty, a row with more fields than the header, text that is not in
    ``encoding``, unreadable.

    Example:
        >>> read_table("data/patients.csv").columns.tolist()  # doctest: +SKIP
        ['age', 'pulse', 'outcome']
    """
    import pandas as pd

    try:
        with warnings.catch_warnings():
            # index_col=False: pandas would otherwise take the first column as the index when
            # the first row has one field more than the header, shifting every column.
            warnings.filterwarnings("error", message="Length of header",
                                    category=pd.errors.ParserWarning)
            return pd.read_csv(path, sep=sep, dtype=dtype, encoding=encoding, index_col=False)
    except pd.errors.EmptyDataError as e:
        raise DataError(f"{path}: the file is empty (expected a header line naming the "
                        "columns)") from e
    except (pd.errors.ParserError, pd.errors.ParserWarning) as e:
        raise _ragged_rows(path, sep, encoding, e) from e
    except UnicodeDecodeError as e:
        raise _undecodable(path, encoding, e) from e
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror or first_line(e)})") from e


def _ragged_rows(path: str | Path, sep: str, encoding: str, error: Exception) -> DataError:
    """The first row with more fields than the header (what pandas refuses), found again with
    the csv module, which counts quoted fields the same way."""
    import csv

    try:
        with open(path, newline="", encoding=encoding, errors="replace") as f:
            reader = csv.reader(f, delimiter=sep)
            header = next(reader, [])
            for record, fields in enumerate(reader):
                if len(fields) > len(header):
                    where = row_phrase(record, reader.line_num - record)
                    return DataError(
                        f"{path}: {where} has {len(fields)} fields but the header has "
                        f"{len(header)} (a stray {sep!r}, or a value holding {sep!r} that "
                        "needs quotes)")
    except (csv.Error, TypeError, OSError):  # a multi-character delimiter, ...
        pass
    quote = re.search(r"EOF inside string starting at row (\d+)", str(error))
    if quote:  # pandas counts the header as row 0
        row = int(quote.group(1)) - 1
        return DataError(f"{path}: a quoted value in {row_phrase(row, 2)} is never closed "
                         "(a '\"' without its partner)")
    return DataError(f"{path}: not a readable CSV file ({first_line(error)})")


def _undecodable(path: str | Path, encoding: str, error: UnicodeDecodeError) -> DataError:
    """Where the text stops being ``encoding``: the byte, the row and the line."""
    data = Path(path).read_bytes()
    try:
        data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        where = "the header (line 1)" if line == 1 else row_phrase(line - 2, 2)
        return DataError(f"{path}: not {encoding} text: byte {e.start} in {where} is "
                         f"0x{data[e.start]:02x}; save the file as UTF-8, or name its encoding "
                         "in data.source.encoding (latin-1, cp1252, ...)")
    return DataError(f"{path}: not {encoding} text ({first_line(error)})")


def check_encoding(encoding: str, path: str) -> str:
    """``encoding`` if Python knows it, else a SpecError at ``path``."""
    import codecs

    try:
        codecs.lookup(encoding)
    except LookupError:
        raise SpecError(path, f"unknown text encoding {encoding!r}", value=encoding,
                        valid="a Python codec name: utf-8, latin-1, cp1252, utf-16, ...") from None
    return encoding


@contextlib.contextmanager
def open_npz(path: str | Path) -> Iterator[Any]:
    """``np.load(path, allow_pickle=False)`` for an ``.npz`` archive, or one clear DataError
    saying what the file is instead (empty, a single ``.npy`` array, a pickle, truncated).

    Example:
        >>> with open_npz("data/arrays.npz") as z:  # doctest: +SKIP
        ...     x = npz_array(z, "x", "data/arrays.npz")
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror or first_line(e)})") from e
    if not head:
        raise DataError(f"{path}: the file is empty (0 bytes), not an NPZ archive")
    if head.startswith(b"\x93NUMPY"):
        raise DataError(f"{path}: a single .npy array, not an NPZ archive of named arrays "
                        "(write one with np.savez(path, x=..., y=...))")
    if not head.startswith(b"PK"):
        what = "a Python pickle, which kspec never loads" if head[:1] == b"\x80" else (
            f"it starts with {head[:4]!r}")
        raise DataError(f"{path}: not an NPZ archive (a zip of .npy arrays written by "
                        f"np.savez; {what})")
    try:
        archive = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise DataError(f"{path}: truncated or corrupt NPZ archive ({first_line(e)})") from e
    with archive:
        yield archive


def npz_array(archive: Any, key: str, path: str | Path) -> np.ndarray:
    """One array of an open NPZ archive; object arrays (pickles) and damaged entries are
    refused with the file and the array's name."""
    try:
        return archive[key]
    except ValueError as e:
        if "allow_pickle" in str(e) or "Object arrays" in str(e):
            raise DataError(f"{path}: array {key!r} holds Python objects (dtype=object, stored "
                            "as a pickle); kspec loads arrays with allow_pickle=False and "
                            "never unpickles: save numbers (np.asarray(a, dtype='float32')) "
                            "or fixed-width text") from e
        raise DataError(f"{path}: array {key!r} cannot be read ({first_line(e)})") from e
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: array {key!r} is truncated or corrupt "
                        f"({type(e).__name__}: {first_line(e)})") from e
