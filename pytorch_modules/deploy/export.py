"""Export of a trained embedding network for use without this recipe: TorchScript and ONNX.

Both take feature batches `feats` of shape (batch, bins, frames), float32 (the 161-bin log
spectrogram, or the 80-bin log mel filterbank of conf/fbank.conf: whatever the model was
trained on), with any number of frames (at least MIN_FRAMES; pad shorter input by repeating it,
as pytorch_modules/inference.py does), and return `embedding` (batch, embedding_dim).
Any backbone of models.BACKBONES exports (ResCNN, ResNet34, ECAPA-TDNN).  The features must be
the training features: the export dir keeps a copy of spectrogram.conf, and a feature config
whose number of bins is not the model's model.input_bins is refused.

The network is exported in eval mode: its BatchNorm layers (the embedding BatchNorm too) use the
running statistics of training, so an utterance's embedding does not depend on its batch.

TorchScript is scripted, not traced: nothing in the graph is specialised to the example's
length.  ONNX uses torch.export (torch.onnx.export(dynamo=True), the supported exporter; the
TorchScript-based one is deprecated) with the batch and frame dimensions dynamic.
"""
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from pytorch_modules.errors import RecipeError
from pytorch_modules.inference import MIN_FRAMES

ONNX_OPSET = 18
INPUT_NAME, OUTPUT_NAME = "feats", "embedding"
# Lengths the exported files are checked at after export: a 3-s crop and a longer odd length.
CHECK_FRAMES = (300, 437)


def check_num_bins(model, num_bins):
    """Refuses features of another height than the model was trained on (model.input_bins):
    the stats-pooling backbones would fail inside the exporter, and an average-pooling ResCNN
    would export but be checked on features it never saw."""
    trained = getattr(model, "input_bins", None)
    if trained is not None and trained != num_bins:
        raise RecipeError(f"the feature options give {num_bins}-bin features, but the model was "
                          f"trained on {trained} bins (model.input_bins); give --feat-config "
                          f"with the feature options the model was trained with")


def example_input(model, num_bins, frames=CHECK_FRAMES[0], batch=2, seed=0):
    """A random float32 feature batch of the model's input shape."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, num_bins, frames, generator=generator)


def export_torchscript(model, path):
    """Scripts the eval-mode network into `path` (load with torch.jit.load).

    torch 2.11 marks torch.jit deprecated in favour of torch.export, but TorchScript is still
    what libtorch (C++) and older PyTorch load, so it is written, with the warning silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(model.eval())
    tmp = Path(path).with_name(f".{Path(path).name}.tmp")
    scripted.save(str(tmp))
    tmp.replace(path)


def export_onnx(model, path, num_bins, opset=ONNX_OPSET):
    """Exports the eval-mode network to ONNX with dynamic batch and frame dimensions."""
    check_num_bins(model, num_bins)
    batch = torch.export.Dim("batch", min=1)
    frames = torch.export.Dim("frames", min=MIN_FRAMES)
    tmp = Path(path).with_name(f".{Path(path).name}.tmp")
    # The exporter logs a warning per torchvision operator it cannot register (torchvision is
    # not installed, and not needed) and a deprecation in pytree: noise, not problems.
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            program = torch.onnx.export(
                model.eval(), (example_input(model, num_bins),), dynamo=True, opset_version=opset,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_shapes={"feats": {0: batch, 2: frames}}, verbose=False)
        program.save(str(tmp))
    finally:
        exporter_log.setLevel(level)
    tmp.replace(path)


def torchscript_embeddings(path, feats: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # see export_torchscript
        module = torch.jit.load(str(path), map_location="cpu")
    with torch.inference_mode():
        return module(torch.from_numpy(feats)).numpy()


def onnx_embeddings(path, feats: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run([OUTPUT_NAME], {INPUT_NAME: feats})[0]


def max_differences(model, torchscript_path, onnx_path, num_bins, lengths=CHECK_FRAMES):
    """{(format, frames): max |exported - PyTorch| / max(1, max |PyTorch|)} over a random batch
    at each length.  Relative to the embeddings' scale: a trained network's embeddings can be
    in the tens of thousands (only their direction matters for cosine scoring), where float32
    rounding alone differs by 1e-2; below 1 the difference is absolute."""
    differences = {}
    for frames in lengths:
        feats = example_input(model, num_bins, frames, seed=frames)
        with torch.inference_mode():
            reference = model.eval()(feats).numpy()
        for name, run in (("torchscript", torchscript_embeddings), ("onnx", onnx_embeddings)):
            got = run(torchscript_path if name == "torchscript" else onnx_path, feats.numpy())
            scale = max(1.0, float(np.abs(reference).max()))
            differences[(name, frames)] = float(np.abs(got - reference).max()) / scale
    return differences
