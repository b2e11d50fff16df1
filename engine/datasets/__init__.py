"""Datasets: loaders for CodeXGLUE-style files and the builtin offline datasets."""
