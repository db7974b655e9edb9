"""Reports: DET curves, cosine histograms and margin plots."""
