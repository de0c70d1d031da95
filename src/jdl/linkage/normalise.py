"""Normalised comparison keys shared by candidate selection and the linkage rules.

All functions are vectorised over pandas Series because they run on partitions of
the national people table (about 10 million rows in all).
"""

from __future__ import annotations

import functools
import unicodedata

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

SEX_CODES: dict[str, int] = {"M": 1, "F": 2}
_NO_SEX = 0
_BLOCK_STRIDE = 4  # > every sex code, so (days, sex) packs into one int64 without collisions
MISSING_DAYS = np.iinfo(np.int64).min // _BLOCK_STRIDE

# A PNC ID is written with a 2- or 4-digit year ("09/123456A", "2009/0123456A"); the key
# keeps the last two year digits and drops the serial's leading zeros so both forms agree.
_PNC_VALID = r"^(?:19|20)?\d{2}/\d{1,7}[A-Z]$"
_PNC_PARTS = r"^(?:19|20)?(\d{2})/0*(\d+)([A-Z])$"
_PNC_KEY = r"\1/\2\3"
_PNC_KEY_FORM = r"^\d{2}/[1-9]\d{0,6}[A-Z]$"
_PNC_SERIAL_DIGITS = 7


# the bytes a value that is its own compact upper-case PNC form never has: any but digits, "/" and capitals
_NOT_PNC_BYTES = np.ones(256, dtype=bool)
for _allowed in (b"0123456789", b"/", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
    _NOT_PNC_BYTES[np.frombuffer(_allowed, dtype=np.uint8)] = False


def _all_pnc_bytes(data: np.ndarray) -> bool:
    """Every byte is a digit, "/" or a capital: within "/" (0x2F) to "Z" (0x5A), none of ":" to "@" (0x3A-0x40).

    Minimum, maximum and one wrapped-around range test: passes numpy runs in SIMD, unlike a lookup.
    """
    if not len(data):
        return True
    if int(data.min()) < 0x2F or int(data.max()) > 0x5A:
        return False
    return not bool(((data - np.uint8(0x3A)) <= 0x40 - 0x3A).any())


def needs_compacting(text: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Whether each value has a character other than a digit, "/" or a capital (False when missing).

    What `match_substring_regex(text, "[^0-9/A-Z]")` answers, from the UTF-8 bytes: every byte
    of a character outside that set (any non-ASCII character included) is outside it too.
    """
    chunks = text.chunks if isinstance(text, pa.ChunkedArray) else [text]
    parts = [np.zeros(0, dtype=bool)]
    for chunk in chunks:
        if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
            parts.append(pc.fill_null(pc.match_substring_regex(chunk, r"[^0-9/A-Z]"), False)
                         .to_numpy(zero_copy_only=False))
            continue
        offset_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        _, offset_buffer, data_buffer = chunk.buffers()
        offsets = np.frombuffer(offset_buffer, dtype=offset_type, count=len(chunk) + 1 + chunk.offset)[chunk.offset:]
        start, end = int(offsets[0]), int(offsets[-1])
        data = np.frombuffer(data_buffer, dtype=np.uint8, count=end)[start:] if data_buffer is not None and end \
            else np.zeros(0, dtype=np.uint8)
        rows = np.zeros(len(chunk), dtype=bool)
        if _all_pnc_bytes(data):
            parts.append(rows)  # the usual case: every byte is a digit, "/" or a capital
            continue
        outside = np.flatnonzero(_NOT_PNC_BYTES.take(data)) + start
        rows[np.searchsorted(offsets, outside, side="right") - 1] = True
        if chunk.null_count:
            rows &= chunk.is_valid().to_numpy(zero_copy_only=False)
        parts.append(rows)
    return np.concatenate(parts)


def pnc_match_keys(pnc_ids: pd.Series) -> pd.Series:
    """Comparable PNC key per value (string dtype), <NA> when blank or not a PNC ID."""
    # pyarrow compute directly: much faster than the pandas str accessor for regexes.
    keys = pnc_text_match_keys(pa.array(pnc_ids.astype("string[pyarrow]").array))
    return pd.Series(keys.array, index=pnc_ids.index, copy=False).astype("string")


def pnc_text_match_keys(text: pa.Array | pa.ChunkedArray) -> pd.Series:
    """`pnc_match_keys` of Arrow text (a Series with a fresh index)."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    # a value of digits, "/" and capitals is its own compact upper-case form: only the others are rewritten
    compacting = needs_compacting(text)
    if compacting.any():
        rewrite = pa.array(compacting)
        compact = pc.utf8_upper(pc.replace_substring_regex(pc.filter(text, rewrite), r"\s", ""))
        text = pc.replace_with_mask(text, rewrite, compact.cast(text.type))
    with_century = _century_form(text)
    if with_century.any():
        # the usual form ("2009/1234567A"): its key drops the century, no regex needed
        short = np.flatnonzero(with_century)
        other = np.flatnonzero(~with_century)
        keys = pc.take(
            pa.concat_arrays([pc.utf8_slice_codeunits(pc.take(text, pa.array(short)), 2),
                              _regex_keys(pc.take(text, pa.array(other)))]),
            pa.array(np.argsort(np.concatenate([short, other]), kind="stable")),
        )
    else:
        keys = _regex_keys(text)
    as_pandas = keys.to_pandas(types_mapper=pd.ArrowDtype).array  # .array: keep no index
    return pd.Series(as_pandas, copy=False).astype("string")


def _regex_keys(text: pa.Array) -> pa.Array:
    """The match key of each (compact upper-case) value, by the regexes."""
    valid = pc.fill_null(pc.match_substring_regex(text, _PNC_VALID), False)
    # a value already in key form (two-digit year, no leading zeros) is its own key: only the others
    # go through the (much slower) regex replacement
    own_key = pc.fill_null(pc.match_substring_regex(text, _PNC_KEY_FORM), False)
    keys = pc.if_else(own_key, text, pa.scalar(None, text.type))
    rewrite = pc.and_(valid, pc.invert(own_key))
    if pc.any(rewrite).as_py():
        keys = _rewritten_keys(text, keys, rewrite)
    return keys


_CENTURY_FORM_BYTES = 13  # "2009/1234567A"


def _century_form(text: pa.Array) -> np.ndarray:
    """Whether each value matches ^(19|20)\\d{2}/[1-9]\\d{6}[A-Z]$, read from the UTF-8 bytes.

    Such a value is valid and not in key form; its key is the value without its first two
    characters (what the regex rewriting gives: no leading zeros to drop).
    """
    if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)) or not len(text):
        return np.zeros(len(text), dtype=bool)
    offset_type = np.int64 if pa.types.is_large_string(text.type) else np.int32
    _, offset_buffer, data_buffer = text.buffers()
    offsets = np.frombuffer(offset_buffer, dtype=offset_type, count=len(text) + 1 + text.offset)[text.offset:]
    if data_buffer is None:
        return np.zeros(len(text), dtype=bool)
    data = np.frombuffer(data_buffer, dtype=np.uint8, count=int(offsets[-1]))
    starts = offsets[:-1].astype(np.int64)
    sized = np.flatnonzero(np.diff(offsets) == _CENTURY_FORM_BYTES)
    if text.null_count:
        sized = sized[text.is_valid().to_numpy(zero_copy_only=False)[sized]]
    chars = data[starts[sized, None] + np.arange(_CENTURY_FORM_BYTES)]

    def between(column: np.ndarray, low: bytes, high: bytes) -> np.ndarray:
        return (column >= ord(low)) & (column <= ord(high))

    digits = np.all(between(chars[:, [2, 3, 6, 7, 8, 9, 10, 11]], b"0", b"9"), axis=1)
    century = ((chars[:, 0] == ord("1")) & (chars[:, 1] == ord("9"))) | (
        (chars[:, 0] == ord("2")) & (chars[:, 1] == ord("0")))
    matches = (century & digits & (chars[:, 4] == ord("/")) & between(chars[:, 5], b"1", b"9")
               & between(chars[:, 12], b"A", b"Z"))
    found = np.zeros(len(text), dtype=bool)
    found[sized[matches]] = True
    return found


def _rewritten_keys(text: pa.Array, keys: pa.Array, rewrite: pa.Array) -> pa.Array:
    """`keys` with the valid PNC IDs at `rewrite` (not in key form) replaced by their key."""
    candidates = pc.filter(text, rewrite)
    # A valid value with its "/" at position 4 starts with a century (19|20): dropping those two
    # characters is the regex replacement's result whenever what is left is in key form (no leading
    # zeros in the serial). Only the others need the (much slower) regex replacement.
    with_century = pc.equal(pc.find_substring(candidates, "/"), 4)
    shortened = pc.if_else(with_century, pc.utf8_slice_codeunits(candidates, 2), candidates)
    done = pc.and_(with_century, pc.fill_null(pc.match_substring_regex(shortened, _PNC_KEY_FORM), False))
    if not pc.all(done).as_py():
        slow = pc.invert(done)
        rewritten = pc.replace_substring_regex(pc.filter(candidates, slow), _PNC_PARTS, _PNC_KEY)
        shortened = pc.replace_with_mask(shortened, slow, rewritten.cast(shortened.type))
    return pc.replace_with_mask(keys, rewrite, shortened.cast(keys.type))


@functools.lru_cache(maxsize=8)
def pnc_written_forms(keys: frozenset[str]) -> pa.Array:
    """Every compact upper-case spelling whose match key is in `keys`.

    Matching raw spellings with isin avoids running a regex replacement over every
    national record; `pnc_match_keys` on the result gives back exactly `keys`.
    """
    forms: list[str] = []
    for key in keys:
        year, rest = key.split("/")
        serial, check = rest[:-1], rest[-1]
        for century in ("", "19", "20"):
            for zeros in range(_PNC_SERIAL_DIGITS - len(serial) + 1):
                forms.append(f"{century}{year}/{'0' * zeros}{serial}{check}")
    return pa.array(sorted(forms), pa.string())


def pnc_in_keys(pnc_ids: pd.Series, keys: frozenset[str]) -> np.ndarray:
    """Boolean mask: the value's PNC match key is one of `keys` (fast path for big tables)."""
    if not keys:
        return np.zeros(len(pnc_ids), dtype=bool)
    return pnc_text_in_keys(pa.array(pnc_ids.astype("string[pyarrow]").array), keys)


def pnc_text_in_keys(
    text: pa.Array | pa.ChunkedArray, keys: frozenset[str], compacting: np.ndarray | None = None
) -> np.ndarray:
    """`pnc_in_keys` of Arrow text (no pandas conversion of the national values).

    `compacting`: `needs_compacting(text)` when the caller knows it already.
    """
    if not keys:
        return np.zeros(len(text), dtype=bool)
    forms = pnc_written_forms(keys)
    # a value of digits, "/" and capitals is its own compact upper-case form: only the others are rewritten
    rewrite = needs_compacting(text) if compacting is None else compacting
    found = pc.fill_null(pc.is_in(text, value_set=forms), False).to_numpy(zero_copy_only=False)
    if rewrite.any():
        where = np.flatnonzero(rewrite)
        compact = pc.utf8_upper(pc.replace_substring_regex(pc.take(text, pa.array(where)), r"\s", ""))
        found = found.copy()
        found[where] = pc.fill_null(pc.is_in(compact, value_set=forms), False).to_numpy(zero_copy_only=False)
    return np.asarray(found, dtype=bool)


def days_since_epoch(dates: pd.Series) -> np.ndarray:
    """int64 days since 1970-01-01; missing or unparseable dates give a sentinel no key uses."""
    if not pd.api.types.is_datetime64_any_dtype(dates.dtype):
        dates = pd.to_datetime(dates, errors="coerce")
    if isinstance(dates.dtype, pd.DatetimeTZDtype):
        dates = dates.dt.tz_localize(None)
    as_days = dates.to_numpy(dtype="datetime64[ns]", na_value=np.datetime64("NaT"))
    missing = np.isnat(as_days)
    days = as_days.astype("datetime64[D]").astype(np.int64)
    days[missing] = MISSING_DAYS
    return days


def sex_codes(sex: pd.Series) -> np.ndarray:
    """1 for M, 2 for F, 0 for anything else (which then matches no block)."""
    # each distinct spelling is normalised once (a national table has a handful)
    positions, distinct = pd.factorize(sex.astype("string"), use_na_sentinel=True)
    text = pd.Series(distinct, dtype="string").str.strip().str.upper()
    per_value = np.full(len(text) + 1, _NO_SEX, dtype=np.int64)  # the last one: missing values
    for value, code in SEX_CODES.items():
        per_value[:-1][(text == value).fillna(False).to_numpy(dtype=bool)] = code
    return per_value[positions]


def block_codes(days: np.ndarray, sexes: np.ndarray) -> np.ndarray:
    """(date of birth, sex) packed into one int64 so blocks can be matched with isin."""
    return days * _BLOCK_STRIDE + sexes


def normalise_name(name: object) -> str:
    """Upper-case letters only, accents stripped: "O'Néil" -> "ONEIL", "Smith-Jones" -> "SMITHJONES"."""
    if name is None or (not isinstance(name, str) and pd.isna(name)):
        return ""
    decomposed = unicodedata.normalize("NFKD", str(name))
    letters = "".join(ch for ch in decomposed if ch.isalpha() and not unicodedata.combining(ch))
    return letters.upper()


def normalise_names(names: pd.Series) -> pd.Series:
    """`normalise_name` over a Series, computed once per distinct value (names repeat a lot)."""
    codes, distinct = pd.factorize(names.astype("string"))  # missing: code -1
    normalised = pd.array([normalise_name(value) for value in distinct] + [""], dtype="string")
    result = normalised.take(np.where(codes < 0, len(distinct), codes))
    return pd.Series(result, index=names.index)


def normalise_coded_names(positions: np.ndarray, values: list[str | None]) -> pd.Series:
    """`normalise_names` of a column given as distinct `values` and each row's position in them.

    Positions past the values are missing cells; only the values some row uses are normalised.
    """
    used = np.zeros(len(values) + 1, dtype=bool)
    used[positions] = True
    normalised = [normalise_name(value) if used[i] else "" for i, value in enumerate(values)]
    return pd.Series(pd.array([*normalised, ""], dtype="string").take(positions))
