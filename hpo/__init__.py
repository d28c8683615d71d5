"""hpo: hyperparameter-search orchestration for PyTorch and Transformers models."""

__version__ = "0.1.0"
