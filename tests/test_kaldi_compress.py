"""The fast Kaldi compressed-matrix writer against kaldiio's own writer and reader."""
import io
import struct
import warnings

import kaldiio
import numpy as np
import pytest
from kaldiio.matio import write_array

from pytorch_modules.features.spectrogram import Spectrogram, SpectrogramOptions
from pytorch_modules.fileio.kaldi_compress import ArkWriter, bytes_per_matrix, compress

TINY = 1e-30


def kaldiio_bytes(matrix):
    """kaldiio's compressed object (compression_method=2, the speech-feature method)."""
    out = io.BytesIO()
    with warnings.catch_warnings():  # kaldiio divides by zero on pathological columns
        warnings.simplefilter("ignore")
        write_array(out, matrix, compression_method=2)
    return out.getvalue()


def decode(obj):
    return kaldiio.matio.read_kaldi(io.BytesIO(obj))


def max_error(obj, matrix):
    return float(np.abs(decode(obj).astype(np.float64) - matrix).max())


def assert_as_accurate_as_kaldiio(matrix):
    ours, theirs = compress(matrix), kaldiio_bytes(matrix)
    assert max_error(ours, matrix) <= max_error(theirs, matrix) * 1.01 + TINY


def random_matrices(seed, count):
    rng = np.random.default_rng(seed)
    for i in range(count):
        rows, cols = int(rng.integers(5, 700)), int(rng.choice([1, 2, 40, 161]))
        scale, shift = rng.uniform(0.01, 100), rng.uniform(-50, 50)
        matrix = (rng.normal(size=(rows, cols)) * scale + shift).astype(np.float32)
        if i % 3 == 1:
            matrix = np.round(matrix)  # many ties at the percentiles and segment edges
        yield matrix


def spectrogram_of_noise_and_tone(seconds=3.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    wave = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.normal(size=t.size)
    return Spectrogram(SpectrogramOptions())(wave.astype(np.float32))


@pytest.mark.parametrize("seed", range(3))
def test_bytes_equal_kaldiio_on_random_matrices(seed):
    for matrix in random_matrices(seed, 40):
        assert compress(matrix) == kaldiio_bytes(matrix), matrix.shape


def test_bytes_equal_kaldiio_on_a_real_spectrogram():
    feats = spectrogram_of_noise_and_tone()
    assert feats.shape == (299, 161)
    assert compress(feats) == kaldiio_bytes(feats)


def test_header_is_well_formed():
    matrix = np.random.default_rng(4).normal(size=(123, 7)).astype(np.float32)
    obj = compress(matrix)
    assert obj[:5] == b"\0BCM "
    low, span, rows, cols = struct.unpack("<ffii", obj[5:21])
    assert (rows, cols) == (123, 7)
    assert low == matrix.min() and span == np.float32(matrix.max() - matrix.min())
    percentiles = np.frombuffer(obj[21:21 + 8 * cols], dtype="<u2").reshape(cols, 4)
    assert (np.diff(percentiles.astype(int), axis=1) > 0).all()  # p0 < p25 < p75 < p100
    assert len(obj) == bytes_per_matrix(rows, cols) == 21 + cols * (8 + rows)


def test_column_major_layout():
    """Column j's bytes are contiguous: a matrix whose columns are shifted copies of one
    column gives identical byte blocks."""
    column = np.linspace(-1, 1, 50, dtype=np.float32)
    matrix = np.stack([column, column + 10], axis=1)
    obj = compress(matrix)
    data = obj[21 + 2 * 8:]
    assert data[:50] == data[50:]


def test_ark_and_scp_round_trip_equal_kaldiio_files(tmp_path):
    rng = np.random.default_rng(5)
    matrices = {f"spk{i}-utt{i}": rng.normal(size=(20 + 37 * i, 161)).astype(np.float32)
                for i in range(6)}
    ours_ark, ours_scp = tmp_path / "ours.ark", tmp_path / "ours.scp"
    with ArkWriter(ours_ark, ours_scp) as writer:
        for key, matrix in matrices.items():
            writer(key, matrix)
    theirs_ark, theirs_scp = tmp_path / "theirs.ark", tmp_path / "theirs.scp"
    with kaldiio.WriteHelper(f"ark,scp:{theirs_ark},{theirs_scp}", compression_method=2) as w:
        for key, matrix in matrices.items():
            w(key, matrix)
    assert ours_ark.read_bytes() == theirs_ark.read_bytes()
    assert ours_scp.read_text() == theirs_scp.read_text().replace(str(theirs_ark), str(ours_ark))

    from_scp = kaldiio.load_scp(str(ours_scp))
    from_ark = dict(kaldiio.load_ark(str(ours_ark)))
    assert list(from_scp) == list(matrices) == list(from_ark)
    for key, matrix in matrices.items():
        np.testing.assert_array_equal(from_scp[key], from_ark[key])
        assert from_scp[key].shape == matrix.shape
        assert np.abs(from_scp[key] - matrix).max() < 0.1 * np.ptp(matrix)


def test_uncompressed_writer_equals_kaldiio(tmp_path):
    matrix = np.random.default_rng(6).normal(size=(30, 161)).astype(np.float32)
    with ArkWriter(tmp_path / "a.ark", tmp_path / "a.scp", compress=False) as writer:
        writer("utt1", matrix)
    kaldiio.save_ark(str(tmp_path / "b.ark"), {"utt1": matrix})
    assert (tmp_path / "a.ark").read_bytes() == (tmp_path / "b.ark").read_bytes()
    np.testing.assert_array_equal(kaldiio.load_mat(f"{tmp_path}/a.ark:5"), matrix)


def test_constant_column_and_constant_matrix():
    rng = np.random.default_rng(7)
    matrix = rng.normal(size=(40, 3)).astype(np.float32)
    matrix[:, 1] = 2.5
    assert compress(matrix) == kaldiio_bytes(matrix)
    assert_as_accurate_as_kaldiio(matrix)
    constant = np.full((9, 4), -3.0, dtype=np.float32)
    assert compress(constant) == kaldiio_bytes(constant)
    np.testing.assert_array_equal(decode(compress(constant)), constant)


@pytest.mark.parametrize("rows", [1, 2, 3, 4])
def test_fewer_than_five_rows(rows):
    """Kaldi's small-matrix rule (percentiles one uint16 step apart): readable and at least as
    accurate as kaldiio, within one step of the global grid."""
    matrix = (np.random.default_rng(rows).normal(size=(rows, 20)) * 3).astype(np.float32)
    decoded = decode(compress(matrix))
    assert decoded.shape == (rows, 20)
    assert_as_accurate_as_kaldiio(matrix)
    assert np.abs(decoded - matrix).max() <= 1.01 * np.ptp(matrix) / 65535


@pytest.mark.parametrize("scale", [1e-30, 1e-6, 1e6, 1e30])
def test_very_small_and_very_large_values(scale):
    matrix = (np.random.default_rng(8).normal(size=(60, 5)) * scale).astype(np.float32)
    assert compress(matrix) == kaldiio_bytes(matrix)
    assert_as_accurate_as_kaldiio(matrix)


def test_huge_offset_with_tiny_spread_stays_finite():
    """Percentiles that coincide in float32 (1e6 +- 0.03: the float32 step is 0.0625) make
    kaldiio divide by zero; ours still gives finite values, as close as kaldiio's."""
    matrix = (1e6 + np.random.default_rng(9).normal(size=(50, 5)) * 1e-2).astype(np.float32)
    decoded = decode(compress(matrix))
    assert np.isfinite(decoded).all()
    assert_as_accurate_as_kaldiio(matrix)


def test_float64_input_is_compressed_as_float32():
    matrix = np.random.default_rng(10).normal(size=(25, 6))
    assert compress(matrix) == compress(matrix.astype(np.float32))


@pytest.mark.parametrize("bad", [np.zeros((0, 5)), np.zeros(5),
                                 np.array([[1.0, np.nan]] * 6), np.array([[1.0, np.inf]] * 6)])
def test_refuses_empty_vectors_nan_and_inf(bad):
    with pytest.raises(ValueError):
        compress(bad)


def test_writer_refuses_keys_with_whitespace(tmp_path):
    with ArkWriter(tmp_path / "a.ark", tmp_path / "a.scp") as writer:
        with pytest.raises(ValueError, match="key"):
            writer("two words", np.zeros((5, 2), dtype=np.float32))
