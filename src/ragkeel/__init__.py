"""ragkeel: production retrieval-augmented answering."""

__version__ = "0.1.0"
