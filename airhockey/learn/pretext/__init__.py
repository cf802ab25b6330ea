"""Pretext training: the generic trainer, the run folder it writes, checkpoints, prediction
videos and the moving-shapes check. Imports ``methods`` and ``nn``, never downstream stages."""
