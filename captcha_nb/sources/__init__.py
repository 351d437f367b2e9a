"""Data sources: finding, listing, decoding and splitting captchas; how a picture becomes the model input."""
