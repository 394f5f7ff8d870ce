"""Where the scores come from: a local model folder (transformers) or an OpenAI-compatible endpoint."""
