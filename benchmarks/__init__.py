"""Benchmarks behind ``metarl bench``: each module has ``add_arguments(parser)`` and ``run(args) -> str``."""
