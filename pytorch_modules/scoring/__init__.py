"""Scoring: cosine scores, AS-norm, EER/minDCF and bootstrap intervals."""
