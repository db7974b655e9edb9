"""The vectorised embedding reader against kaldiio, and its refusals (None) of anything else."""
import kaldiio
import numpy as np
import pytest

from pytorch_modules.fileio.fast_ark import parse_scp, read_vectors
from pytorch_modules.fileio.kaldi_compress import ArkWriter


def write_vectors(directory, vectors, arks=3):
    """{key: vector} over `arks` arks written by kaldiio, one merged scp; returns its path."""
    keys = list(vectors)
    lines = []
    for job, block in enumerate(np.array_split(np.arange(len(keys)), arks), 1):
        ark, scp = directory / f"x.{job}.ark", directory / f"x.{job}.scp"
        with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}") as writer:
            for i in block:
                writer(keys[i], vectors[keys[i]])
        lines.append(scp.read_text())
    merged = directory / "xvector.scp"
    merged.write_text("".join(lines))
    return merged


def random_vectors(n=40, dim=24, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    # Keys of every length mod 4 put the vectors at every byte alignment.
    return {f"spk{i % 5}-utt{'x' * (i % 7)}{i}": rng.normal(size=dim).astype(dtype)
            for i in range(n)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equals_kaldiio(tmp_path, dtype):
    vectors = random_vectors(dtype=dtype)
    scp = write_vectors(tmp_path, vectors)
    keys, matrix = read_vectors(scp)
    assert keys == list(vectors)
    assert matrix.dtype == np.float32 and matrix.shape == (40, 24)
    expected = np.stack([v for _, v in kaldiio.load_scp_sequential(str(scp))])
    np.testing.assert_array_equal(matrix, expected.astype(np.float32))


def test_float64_output_keeps_double_vectors_exact(tmp_path):
    vectors = random_vectors(dtype=np.float64)
    _, matrix = read_vectors(write_vectors(tmp_path, vectors), dtype=np.float64)
    np.testing.assert_array_equal(matrix, np.stack(list(vectors.values())))


def test_scp_order_need_not_follow_the_arks(tmp_path):
    vectors = random_vectors()
    scp = write_vectors(tmp_path, vectors)
    lines = scp.read_text().splitlines()
    shuffled = [lines[i] for i in np.random.default_rng(1).permutation(len(lines))]
    scp.write_text("\n".join(shuffled) + "\n")
    keys, matrix = read_vectors(scp)
    assert keys == [line.split()[0] for line in shuffled]
    np.testing.assert_array_equal(matrix, np.stack([vectors[k] for k in keys]))


def test_parse_scp(tmp_path):
    scp = tmp_path / "a.scp"
    scp.write_text("u1 /x/a.ark:12\nu2 /x/b.ark:0\n")
    keys, paths, offsets = parse_scp(scp)
    assert keys == ["u1", "u2"] and paths == [b"/x/a.ark", b"/x/b.ark"]
    assert offsets.tolist() == [12, 0]


@pytest.mark.parametrize("text", [
    "",                                     # empty
    "u1 a.ark:5\n\nu2 a.ark:9\n",           # blank line
    "u1 a.ark:5 extra\n",                   # extra field
    "u1 a.ark:5\nu1 a.ark:9\n",             # duplicate key
    "u1 gunzip -c a.ark.gz |\n",            # pipe
    "u1 a.ark:5[0:3]\n",                    # slice
    "u1 a.ark\n",                           # no offset
])
def test_unusual_scp_lines_are_left_to_kaldiio(tmp_path, text):
    scp = tmp_path / "odd.scp"
    scp.write_text(text)
    assert read_vectors(scp) is None


def test_matrices_mixed_dims_and_damaged_arks_are_left_to_kaldiio(tmp_path):
    # Matrices, compressed or not, are not embeddings.
    for compress in (False, True):
        with ArkWriter(tmp_path / "m.ark", tmp_path / "m.scp", compress=compress) as writer:
            writer("u1", np.zeros((6, 4), dtype=np.float32))
        assert read_vectors(tmp_path / "m.scp") is None
    # Two dims in one scp.
    mixed = {"a": np.ones(4, np.float32), "b": np.ones(5, np.float32)}
    assert read_vectors(write_vectors(tmp_path, mixed, arks=1)) is None
    # A truncated ark and a missing one.
    scp = write_vectors(tmp_path, random_vectors(n=6), arks=1)
    ark = tmp_path / "x.1.ark"
    ark.write_bytes(ark.read_bytes()[:-10])
    assert read_vectors(scp) is None
    ark.unlink()
    assert read_vectors(scp) is None
