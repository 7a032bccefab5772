"""Subcommands of the ``handgrad`` CLI, one module each, registered by :mod:`handgrad.cli`."""
