"""Generators as ONNX graphs: ``export`` (``python -m app.export_onnx``: weights -> one ``.onnx`` file)
and ``sampling`` (``OnnxModel``: seeds -> images with onnxruntime, no PyTorch model code;
``python -m app.generate --onnx``). Nothing here is imported by the app unless ``--onnx`` is used,
so the ``onnx`` extra stays optional. Inside this package ``import onnx`` is the ONNX library
(absolute imports), never this package.
"""
