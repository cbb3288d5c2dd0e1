"""Bundles for the robot: ``export.onnx_export`` (dynamics models) and ``export.recurrent_export``
(RL² policies) write them with torch; ``metarl_runtime.model_runtime``, ``metarl_runtime.recurrent_runtime`` and
``metarl_runtime.controllers`` run them (onnxruntime + numpy only, never torch)."""
