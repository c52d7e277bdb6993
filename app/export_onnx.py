"""``python -m app.export_onnx --weights W --out model.onnx``: the documented command; the code is
``app.onnx.export``."""
import sys

from .onnx.export import main

if __name__ == "__main__":
    sys.exit(main())
