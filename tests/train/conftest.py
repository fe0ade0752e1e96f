from train_helpers import tiny_data  # noqa: F401  (fixture)
