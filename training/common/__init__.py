"""Pieces shared by continual pretraining, SFT and export: run options, model loading, logs, metrics."""
