"""The three ``quantize.backend`` values: ``torchao`` (:mod:`.torchao`),
``modelopt.pytorch`` (:mod:`.modelopt_torch`) and ``modelopt.onnx`` (:mod:`.onnxruntime_qdq`,
served by ONNX Runtime). Each module imports its library on first use."""
