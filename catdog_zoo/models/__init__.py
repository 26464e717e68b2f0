"""Keras models: shared blocks, heads and losses, frozen backbones and their features, saving, facts.

Internal, except :mod:`catdog_zoo.models.blocks`, whose names ``catdog_zoo`` exports for plugins.
"""
