"""Command-line entry points called by steps/ and local/ (python -m pytorch_modules.bin.NAME)."""
