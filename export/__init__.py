"""The torch exporters: ``onnx_export`` (dynamics models, with the adaptation step inside the graph)
and ``recurrent_export`` (RL² policies) trace ``metarl_core``'s models into bundles that
``metarl_runtime`` runs on the robot; ``graph_export`` checks every graph against torch."""
