"""Using a trained model outside the recipe: verification of audio files and export to
TorchScript and ONNX."""
