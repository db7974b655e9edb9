"""Files and formats: Kaldi tables and arks, embeddings, audio files, tar shards, atomic writes
and locks."""
