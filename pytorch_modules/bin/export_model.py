"""Exports a trained embedding network to TorchScript and ONNX, and checks both.

    python -m pytorch_modules.bin.export_model --model exp/demo_dam/final.pt \
        --out-dir exp/demo_dam/export [--feat-config conf/spectrogram.conf] [--opset 18]

writes into the output dir:
  embedding.ts.pt      TorchScript (torch.jit.load), scripted from the eval-mode network
  embedding.onnx       ONNX, input `feats` (batch, bins, frames), output `embedding`
                       (batch, dim), batch and frames dynamic
  spectrogram.conf     the feature options the inputs must be computed with
  final.threshold      the decision threshold, when the model has one
                       (pytorch_modules.bin.calibrate)
  info                 key value lines: input/output names and shapes, opset, the checks below
then runs both on random inputs of two lengths (onnxruntime on the CPU) and fails when either
differs from the PyTorch network by more than --tolerance, relative to the embeddings' largest
magnitude (absolute below 1): trained embeddings can be in the tens of thousands.
"""
import argparse
import shutil
from pathlib import Path

from pytorch_modules.deploy.export import (
    INPUT_NAME,
    ONNX_OPSET,
    OUTPUT_NAME,
    check_num_bins,
    export_onnx,
    export_torchscript,
    max_differences,
)
from pytorch_modules.deploy.verification import threshold_path
from pytorch_modules.errors import RecipeError, run_entry_point
from pytorch_modules.features.spectrogram import parse_options_file
from pytorch_modules.fileio.atomic import write_lines
from pytorch_modules.inference import MIN_FRAMES, load_trained_model, locate_feature_config

PROG = "export_model"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="exp/<model>/final.pt")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--feat-config", help="feature options (default: spectrogram.conf beside "
                        "the model, else the one its training config names)")
    parser.add_argument("--opset", type=int, default=ONNX_OPSET,
                        help=f"ONNX opset (default {ONNX_OPSET})")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest max|exported - PyTorch| / max(1, max|PyTorch|) accepted "
                        "by the check (default 1e-4)")
    args = parser.parse_args()

    model, config = load_trained_model(args.model)
    feat_config = locate_feature_config(args.model, args.feat_config,
                                        config.get("data", {}).get("spectrogram_config"))
    num_bins = parse_options_file(feat_config).num_bins
    check_num_bins(model, num_bins)   # before anything is written
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ts_path, onnx_path = out / "embedding.ts.pt", out / "embedding.onnx"
    export_torchscript(model, ts_path)
    export_onnx(model, onnx_path, num_bins, args.opset)
    shutil.copyfile(feat_config, out / "spectrogram.conf")
    if threshold_path(args.model).is_file():
        shutil.copyfile(threshold_path(args.model), out / "final.threshold")

    differences = max_differences(model, ts_path, onnx_path, num_bins)
    checks = [f"check_{name}_{frames}_frames_max_rel_diff {diff:.3g}"
              for (name, frames), diff in differences.items()]
    write_lines(out / "info", [
        f"model {args.model}",
        f"input {INPUT_NAME} float32 (batch, {num_bins}, frames>={MIN_FRAMES})",
        f"output {OUTPUT_NAME} float32 (batch, {model.embedding_dim})", f"onnx_opset {args.opset}",
        *checks])
    worst = max(differences.values())
    if worst > args.tolerance:
        raise RecipeError(f"the exported model differs from the PyTorch one by up to {worst:.3g} "
                          f"of the embeddings' scale (more than --tolerance {args.tolerance:g}); "
                          f"see {out / 'info'}.")
    print(f"{PROG}: {ts_path} and {onnx_path} written; both match PyTorch within {worst:.2g} "
          f"at {', '.join(str(f) for f in sorted({f for _, f in differences}))} frames")


if __name__ == "__main__":
    run_entry_point(main, PROG)
