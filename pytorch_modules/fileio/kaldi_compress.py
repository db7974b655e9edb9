"""A fast writer of Kaldi compressed matrices ("CM", kOneByteWithColHeaders).

This is the format kaldiio writes with compression_method=2 and Kaldi's copy-feats --compress
with the speech-feature method: about 4x smaller than float32, lossy (8 bits per value, placed
by per-column percentiles).  kaldiio compresses one matrix with about 30 full-size NumPy passes
and three full-size temporaries per segment, which made it the slowest step of feature
extraction (about 1,700x real time against 20,000x for uncompressed arks).  Here the same
numbers come out of fewer, in-place passes over all columns at once.

The object, as Kaldi writes it in binary mode (little endian):

    "\\0B" "CM "                     binary marker and token
    min_value float32, range float32, num_rows int32, num_cols int32     (global header)
    num_cols x (p0, p25, p75, p100) uint16      percentiles of each column, quantised on
                                                [min_value, min_value + range] to 0..65535
    num_cols x num_rows uint8                   the data, column by column (column-major)

A value v of a column with decoded percentiles p0 < p25 < p75 < p100 becomes one byte:
    [p0, p25)   -> 0..64     round((v - p0) / (p25 - p0) * 64)
    [p25, p75)  -> 64..192   64 + round((v - p25) / (p75 - p25) * 128)
    [p75, p100] -> 192..255  192 + round((v - p75) / (p100 - p75) * 63)

Arithmetic: the output is byte-identical to kaldiio 2.18's writer (the writer this project used
before), so switching writers changes no feature file.  kaldiio differs from Kaldi's C++ only
in float rounding of the last bit (its 1/65535 scaling and its "+ 64.5" form), which can move a
value by at most one code on rare ties, and in matrices of fewer than 5 rows, where kaldiio
adds 1.0 to float percentiles (and can overflow uint16); there we follow Kaldi's
compressed-matrix.cc, which separates equal percentiles by one uint16 step.
"""
import struct

import numpy as np

_UINT16_MAX = np.float32(65535.0)
_GLOBAL_HEADER = struct.Struct("<ffii")  # min_value, range, num_rows, num_cols
# The three code ranges of a column: (steps across the segment, rounding offset, first code,
# last code).  kaldiio writes the offset as first code + 0.5 ("+ 64.5"); we keep its exact
# float32 arithmetic, so that the bytes are kaldiio's.
_SEGMENTS = ((64.0, 0.5, 0.0, 64.0), (128.0, 64.5, 64.0, 192.0), (63.0, 192.5, 192.0, 255.0))


def _global_range(matrix):
    """(min_value, range) as float32: the whole matrix's span, never empty."""
    low, high = matrix.min(), matrix.max()
    if low == high:  # a constant matrix still needs a positive range (Kaldi's rule)
        high = low + (np.float32(1.0) + abs(low))  # float32 throughout, as kaldiio
    return np.float32(low), np.float32(high - low)


def _to_uint16(values, low, span):
    """Float32 values -> uint16 codes of the global header's grid, as kaldiio rounds them."""
    codes = (values - low) / span * _UINT16_MAX + np.float32(0.499)
    # Kaldi clamps to [0, 1] before scaling; values are within [low, low + span] anyway.
    return np.clip(codes, 0.0, 65535.0).astype(np.uint16)


def _to_float(codes, low, span):
    """Uint16 codes -> float32 values, with kaldiio's decoding arithmetic."""
    return low + codes.astype(np.float32) * span / _UINT16_MAX


def _order_statistics(columns):
    """(4, cols) float32: the values at sorted positions 0, n//4, 3(n//4), n-1 of each column.

    columns is (cols, rows).  A full sort is used rather than np.partition: NumPy's SIMD sort
    of float32 rows beats a partition with four kth positions (bench/README.md), and the
    order statistics are the same values.  With fewer than 5 rows Kaldi uses sorted positions
    0..3 and marks the missing ones; they come back as NaN and become 'previous code + 1'."""
    rows = columns.shape[1]
    ordered = np.sort(columns, axis=1)
    if rows >= 5:
        quarter = rows // 4
        return ordered[:, [0, quarter, 3 * quarter, rows - 1]].T
    stats = np.full((4, columns.shape[0]), np.nan, dtype=np.float32)
    stats[:rows] = ordered.T
    return stats


def column_percentiles(columns, low, span):
    """uint16 (4, cols) percentile codes p0 < p25 < p75 < p100 of each column (Kaldi's
    ComputeColHeader): each is at least one step above the previous, with room left above."""
    stats = _order_statistics(columns)
    present = ~np.isnan(stats)
    codes = np.where(present, _to_uint16(np.nan_to_num(stats), low, span), 0).astype(np.int64)
    codes[0] = np.minimum(codes[0], 65532)
    codes[1] = np.minimum(np.maximum(codes[1], codes[0] + 1), 65533)
    codes[2] = np.minimum(np.maximum(codes[2], codes[1] + 1), 65534)
    codes[3] = np.maximum(codes[3], codes[2] + 1)
    return codes.astype(np.uint16)


def _quantise_fast(columns, bounds):
    """uint8 (cols, rows) codes when every segment of every column has positive finite width.

    Each segment's formula is evaluated for every value and clamped to its code range; a
    value outside a segment then lands exactly on that segment's end code (below it: the
    first code; above it: the last), so the three clamped codes add up to the right code
    plus 0 + 64 + 192 = 256, which the uint8 sum drops by wrapping."""
    total = np.zeros(columns.shape, dtype=np.uint8)
    work = np.empty(columns.shape, dtype=np.float32)
    for (steps, offset, first, last), lower, upper in zip(_SEGMENTS, bounds[:3], bounds[1:]):
        np.subtract(columns, lower, out=work)
        np.divide(work, upper - lower, out=work)
        np.multiply(work, np.float32(steps), out=work)
        np.add(work, np.float32(offset), out=work)
        np.clip(work, first, last, out=work)
        total += work.astype(np.uint8)  # truncation = kaldiio's astype after clamping
    return total


def _quantise_by_segment(columns, bounds):
    """uint8 (cols, rows) codes by choosing each value's segment, for pathological columns
    whose decoded percentiles coincide in float32 (huge values over a tiny range): there a
    zero-width segment yields NaN or inf, which become the segment's end codes."""
    p25, p75 = bounds[1], bounds[2]
    codes = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for (steps, offset, first, last), lower, upper in zip(_SEGMENTS, bounds[:3], bounds[1:]):
            value = (columns - lower) / (upper - lower) * np.float32(steps) + np.float32(offset)
            # fmax/fmin take the number over a NaN: 0/0 lands on the segment's first code.
            codes.append(np.fmin(np.fmax(value, first), last))
    chosen = np.where(columns < p25, codes[0], np.where(columns < p75, codes[1], codes[2]))
    return chosen.astype(np.uint8)


def quantise(columns, percentiles, low, span):
    """uint8 (cols, rows) codes of float32 (cols, rows) columns given their uint16 (4, cols)
    percentiles.  Column-major throughout: the codes are then written as they are, and each
    column's constants broadcast along its contiguous row."""
    bounds = _to_float(percentiles, low, span)[:, :, None]  # (4, cols, 1): p0, p25, p75, p100
    widths = np.diff(bounds, axis=0)
    if np.all(widths > 0) and np.all(np.isfinite(widths)):
        return _quantise_fast(columns, bounds)
    return _quantise_by_segment(columns, bounds)


def _compressed_parts(matrix):
    """The CM object as a list of buffers (header, percentiles, codes), not yet joined."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.size == 0:
        raise ValueError(f"can only compress a non-empty 2-D matrix, got shape {matrix.shape}")
    matrix = matrix.astype(np.float32, copy=False)
    low, span = _global_range(matrix)
    # min and max are NaN if any value is, and infinite if any value is: no extra pass.
    if not (np.isfinite(low) and np.isfinite(span)):
        raise ValueError("cannot compress a matrix holding NaN or infinite values (or whose "
                         "range exceeds float32)")
    rows, cols = matrix.shape
    columns = np.ascontiguousarray(matrix.T)  # Kaldi stores the data column by column
    percentiles = column_percentiles(columns, low, span)
    codes = quantise(columns, percentiles, low, span)
    return [b"\0BCM " + _GLOBAL_HEADER.pack(low, span, rows, cols),
            percentiles.T.astype("<u2").tobytes(),  # per column: p0 p25 p75 p100
            codes.data]                             # column-major bytes


def compress(matrix) -> bytes:
    """The Kaldi binary object (from the "\\0B" marker on) of a 2-D matrix, compressed as CM.

    Raises ValueError for an empty or non-2-D matrix or one holding NaN or infinity (Kaldi
    refuses those too: the percentiles would be meaningless)."""
    return b"".join(_compressed_parts(matrix))


def _float_parts(matrix):
    """The uncompressed float32 matrix object ("FM"), as kaldiio writes it: header, data."""
    matrix = np.ascontiguousarray(matrix, dtype="<f4")
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {matrix.shape}")
    rows, cols = matrix.shape
    return [b"\0BFM \4" + struct.pack("<i", rows) + b"\4" + struct.pack("<i", cols),
            matrix.data]


class ArkWriter:
    """Writes matrices to an ark and its scp, as kaldiio.WriteHelper("ark,scp:ARK,SCP") does.

    writer(key, matrix) appends `key <object>` to the ark and `key ARK:OFFSET` to the scp, the
    offset pointing at the object's "\\0B" marker.  compress=True writes CM objects (kaldiio's
    compression_method=2), False float32 "FM" matrices.  Use as a context manager."""

    def __init__(self, ark_path, scp_path, compress=True):
        self.ark_path, self.compressed = str(ark_path), compress
        self._ark = open(ark_path, "wb")
        self._scp = open(scp_path, "w", encoding="utf-8")

    def __call__(self, key, matrix):
        if not key or any(c.isspace() for c in key):
            raise ValueError(f"an ark key must be non-empty without whitespace, got {key!r}")
        parts = _compressed_parts(matrix) if self.compressed else _float_parts(matrix)
        self._ark.write(key.encode("utf-8") + b" ")
        offset = self._ark.tell()
        for part in parts:  # written as they are: no joined copy of the object
            self._ark.write(part)
        self._scp.write(f"{key} {self.ark_path}:{offset}\n")

    def close(self):
        self._ark.close()
        self._scp.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def bytes_per_matrix(rows, cols, compressed=True):
    """Size in bytes of one ark object (without the key): for disk-use estimates."""
    if compressed:
        return 5 + _GLOBAL_HEADER.size + cols * (8 + rows)
    return 15 + 4 * rows * cols


__all__ = ["ArkWriter", "compress", "column_percentiles", "quantise", "bytes_per_matrix"]

