"""Peer serving stacks for the model-hop (B1) and batching (B4) benchmarks.

``envs`` installs each peer into its own virtual environment from the package registry;
``servers/`` holds the small program each peer runs (inside that environment) to serve the same
ONNX model with the same payloads.
"""
