"""The ``metarl`` command (``metarl.cli``) and what it runs that is not a library: the demos and
the scoring of a robot's log. It sits on the top floor and may import every package below it."""
