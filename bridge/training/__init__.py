"""Training and measuring models: data loading, the train loop, eval and the memorization check."""
