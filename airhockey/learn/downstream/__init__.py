"""Downstream classifiers: the labelled frames of a dataset, the direction classifier on a
(pretrained or fresh) encoder, its training loop, and linear probes of frozen features."""
