"""Building blocks: the encoder interface (``encoder``), ConvLSTM and ConvGRU cells and stacks,
the ConvLSTM autoencoder, and frame-prediction metrics. Nothing here imports another stage."""
