"""Taking a trained network out of PyTorch: ``onnx_export`` (ONNX files checked with onnxruntime, and an
onnxruntime network with the interface of the PyTorch one). Imported on demand: its packages are the optional
``onnx`` extra."""
