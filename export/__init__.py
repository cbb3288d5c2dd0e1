"""Bundles for the robot: ``export.onnx_export`` (dynamics models) and ``export.recurrent_export``
(RL² policies) write them with torch; ``export.runtime``, ``export.runtime_recurrent`` and
``export.runtime_control`` run them (onnxruntime + numpy only, never torch)."""
