"""Bundles for the robot: ``export.onnx_export`` writes them (torch), ``export.runtime`` runs
them (onnxruntime + numpy only, never torch)."""
