"""Gradio app and generation CLI for exported ProGAN / StyleGAN-lite generators.

``python -m app`` serves the web UI (``app.ui``); ``python -m app.generate`` writes the same
outputs to files. The sampling code (``sampling``, ``interpolation``, ``mixing``, ``video``) is pure
torch/PIL and shared by both; no model code lives here: generators come from ``families``.
Two subpackages hold what grew past a file or two: ``projection`` (your own image: projector,
distances, decoding, ``python -m app.project``, the "Your image" tab) and ``onnx`` (export with
``python -m app.export_onnx``, sampling with onnxruntime).
"""
