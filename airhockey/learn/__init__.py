"""PyTorch: datasets over generated shards (``learn.data``), models, training loops and reports.

Import the submodules you need (``from airhockey.learn.data import ClipDataset``); this package
imports nothing itself, so that ``import airhockey.learn`` stays cheap and torch loads on demand.
"""
