"""The robot's runtime: load a bundle, adapt, plan and command, with numpy and onnxruntime only.

This is what ``pip install metarl`` (no extra) installs on a robot and what the ROS node imports.
It never imports torch, PyBullet, gymnasium or ``sim`` (``tests/test_layers.py``): the exporters
in ``export`` write bundles against the contract in ``bundle_manifest``; ``model_runtime`` and
``recurrent_runtime`` run them; ``controllers`` is the per-tick loop the node and the demo share.
"""
