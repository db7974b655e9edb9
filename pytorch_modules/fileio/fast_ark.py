"""Vectorised reading of Kaldi float vectors (embeddings) through an scp.

kaldiio parses one object at a time: for Vox1-E's 145,000 embeddings that is about 20 us of
Python per vector, some 3 s, longer than scoring all 581,480 trials.  Embedding arks written by
kaldiio (or Kaldi) hold objects of one fixed layout,

    key " " "\\0B" "FV " "\\4" <int32 dim> <dim float32>        (or "DV " with float64)

so, given the offsets of the scp, every header can be checked and every vector gathered with a
few NumPy operations over the bytes of each ark: no per-vector Python.

read_vectors() only takes this fast path when every entry is a plain `ARK:OFFSET` into a
readable file whose object at that offset has exactly that layout, with one dim throughout;
for anything else (pipes, slices, matrices, compressed objects, damaged arks, duplicate keys,
malformed lines) it returns None, and the caller reads the scp with kaldiio, whose reader
reports problems line by line.  It never guesses.
"""
import os

import numpy as np

# Bytes of a vector object before its data: "\0B", "FV " / "DV ", "\4", int32 dim.
_HEADER_BYTES = 10
_VECTOR_TOKENS = {b"\0BFV \4": np.dtype("<f4"), b"\0BDV \4": np.dtype("<f8")}


def parse_scp(scp_path):
    """(keys, ark paths, int64 offsets) of an scp of plain `KEY ARK:OFFSET` lines, or None if
    any line is something else (a pipe, a slice, a missing offset, extra fields, a duplicate
    key, an empty file)."""
    with open(scp_path, "rb") as f:
        text = f.read()
    lines = text.splitlines()
    fields = text.split()
    if not lines or len(fields) != 2 * len(lines):  # blank or malformed lines: let kaldiio say
        return None
    try:
        keys = [key.decode("utf-8") for key in fields[0::2]]
    except UnicodeDecodeError:
        return None
    if len(set(keys)) != len(keys):
        return None
    paths, offsets = [], []
    for spec in fields[1::2]:
        path, sep, offset = spec.rpartition(b":")
        if not sep or not path or not offset.isdigit():
            return None  # pipes end in '|', slices in ']': not plain offsets
        paths.append(path)
        offsets.append(offset)
    return keys, paths, np.array(offsets, dtype=np.int64)


def _ark_groups(paths):
    """{ark path (str): row numbers} in order of first appearance."""
    groups = {}
    for row, path in enumerate(paths):
        groups.setdefault(path, []).append(row)
    return {path.decode("utf-8"): np.array(rows, dtype=np.int64) for path, rows in groups.items()}


def _vector_layout(data, offsets):
    """(dtype, dim) if every object at `offsets` in the byte map `data` is a vector of one
    type and one dim that fits in the file; else None."""
    if offsets.size == 0 or offsets.min() < 0 or offsets.max() + _HEADER_BYTES > data.size:
        return None
    headers = data[offsets[:, None] + np.arange(_HEADER_BYTES)]  # (n, 10) bytes
    first = headers[0].tobytes()
    dtype = _VECTOR_TOKENS.get(first[:6])
    if dtype is None or not (headers == headers[0]).all():  # same token and dim everywhere
        return None
    dim = int(np.frombuffer(first[6:10], dtype="<i4")[0])
    if dim <= 0 or offsets.max() + _HEADER_BYTES + dim * dtype.itemsize > data.size:
        return None
    return dtype, dim


def _gather(data, starts, dtype, dim, out):
    """Copy the vectors whose data begin at byte `starts` of `data` into rows of `out`.

    A start can have any alignment (keys have any length), so the bytes are viewed as
    `dtype` once per alignment; over that view a stride trick makes 'the vector starting at
    element i' row i of a (positions, dim) array (no copy), and fancy indexing copies the
    wanted rows.  (np.take would first copy the whole overlapping view.)"""
    size = dtype.itemsize
    for alignment in range(size):
        chosen = np.flatnonzero(starts % size == alignment)
        if chosen.size == 0:
            continue
        count = (data.size - alignment) // size
        words = data[alignment:alignment + count * size].view(dtype)
        rows = np.lib.stride_tricks.as_strided(
            words, shape=(count - dim + 1, dim), strides=(size, size), writeable=False)
        out[chosen] = rows[(starts[chosen] - alignment) // size]


def _read_file(path, buffer):
    """The bytes of `path` as a uint8 array, read into `buffer` (grown if needed) with one
    sequential read: reusing one buffer for every ark avoids faulting in fresh pages for
    each, which costs more than the read itself on the VMs this was measured on."""
    size = os.path.getsize(path)
    if buffer.size < size:
        buffer = np.empty(size, dtype=np.uint8)
    with open(path, "rb", buffering=0) as f:
        got = f.readinto(memoryview(buffer)[:size])
    return buffer[:got], buffer


def read_vectors(scp_path, dtype=np.float32):
    """(keys in scp order, (n, dim) matrix of `dtype`) of an scp of Kaldi vectors, or None
    when the scp or an ark is not of the simple layout described in the module doc."""
    parsed = parse_scp(scp_path)
    if parsed is None:
        return None
    keys, paths, offsets = parsed
    out, buffer = None, np.empty(0, dtype=np.uint8)
    for ark, rows in _ark_groups(paths).items():
        if not os.path.isfile(ark):
            return None
        data, buffer = _read_file(ark, buffer)
        layout = _vector_layout(data, offsets[rows])
        if layout is None:
            return None
        stored, dim = layout
        if out is None:
            out = np.empty((len(keys), dim), dtype=stored)
        elif out.shape[1] != dim or out.dtype != stored:
            return None  # arks of different models or types: kaldiio's path explains
        starts = offsets[rows] + _HEADER_BYTES
        if rows[-1] - rows[0] + 1 == rows.size:  # the usual case: one job's block of the scp
            _gather(data, starts, stored, dim, out[rows[0]:rows[-1] + 1])
        else:
            block = np.empty((rows.size, dim), dtype=stored)
            _gather(data, starts, stored, dim, block)
            out[rows] = block
    return keys, out.astype(dtype, copy=False)
