"""Acoustic features: the log spectrogram, MFCCs, and the job that writes them to arks."""
