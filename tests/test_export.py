"""Export: TorchScript and ONNX (run with onnxruntime on the CPU) give the PyTorch model's
embeddings at two utterance lengths, in eval mode (BatchNorm running statistics)."""
import numpy as np
import pytest
import torch

from pytorch_modules.deploy.export import onnx_embeddings, torchscript_embeddings

from tiny_model import make_model_file, run_module

# whole runs, trainings to the end, kill and resume: the quick tier (-m "not slow") leaves them
pytestmark = pytest.mark.slow

NUM_BINS = 161


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The export_model entry point run once on a tiny model with a threshold sidecar."""
    root = tmp_path_factory.mktemp("export")
    model = make_model_file(root / "final.pt", seed=3)
    (root / "final.threshold").write_text("threshold 0.5\n")
    proc = run_module("pytorch_modules.bin.export_model", "--model", root / "final.pt",
                      "--out-dir", root / "export")
    assert proc.returncode == 0, proc.stderr
    return model, root / "export", proc.stdout


@pytest.mark.parametrize("frames", [150, 437])
def test_exported_models_match_pytorch(exported, frames):
    model, out, _ = exported
    feats = torch.randn(3, NUM_BINS, frames, generator=torch.Generator().manual_seed(frames))
    with torch.inference_mode():
        reference = model(feats).numpy()
    # eval mode: an utterance's embedding does not depend on the rest of its batch
    with torch.inference_mode():
        np.testing.assert_allclose(model(feats[:1]).numpy(), reference[:1], atol=1e-5)
    ts = torchscript_embeddings(out / "embedding.ts.pt", feats.numpy())
    onnx = onnx_embeddings(out / "embedding.onnx", feats.numpy())
    assert ts.shape == onnx.shape == (3, 16)
    np.testing.assert_allclose(ts, reference, atol=1e-4)
    np.testing.assert_allclose(onnx, reference, atol=1e-4)


def test_export_model_entry_point_writes_and_checks(exported):
    _, out, stdout = exported
    assert "both match PyTorch" in stdout
    names = sorted(p.name for p in out.iterdir())
    assert names == ["embedding.onnx", "embedding.ts.pt", "final.threshold", "info",
                     "spectrogram.conf"]
    info = dict(line.split(" ", 1) for line in (out / "info").read_text().splitlines())
    assert info["input"] == "feats float32 (batch, 161, frames>=32)"
    assert float(info["check_onnx_437_frames_max_rel_diff"]) < 1e-4
