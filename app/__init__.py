"""Gradio app and generation CLI for exported ProGAN / StyleGAN-lite generators.

``python -m app`` serves the web UI (``app.ui``); ``python -m app.generate`` writes the same
outputs to files. The sampling code (``sampling``, ``interpolation``, ``mixing``, ``video``) is pure
torch/PIL and shared by both; no model code lives here: generators come from ``families``.
"""
