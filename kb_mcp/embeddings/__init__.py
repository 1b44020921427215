"""Embeddings: the hot-swapped OpenAI client, batching, and chunking of long content."""

from kb_mcp.embeddings.embedder import Embedder
from kb_mcp.embeddings.holder import OpenAIClientHolder
from kb_mcp.embeddings.port import EmbeddingsBackend

__all__ = ["Embedder", "EmbeddingsBackend", "OpenAIClientHolder"]
