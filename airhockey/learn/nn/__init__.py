"""Building blocks: the encoder interface (``encoder``), frame-by-frame predictors (``predictor``),
ConvLSTM and ConvGRU cells and their stacks (``convlstm``, ``convgru``, ``recurrent``), the ConvLSTM
autoencoder, and frame-prediction metrics. Nothing here imports another stage."""
