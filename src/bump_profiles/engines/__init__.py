"""Engines: load the local models and reach the generation backends (transformers, vLLM, OpenAI API)."""
