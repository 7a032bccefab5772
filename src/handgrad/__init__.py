"""handgrad: neural networks whose every gradient is derived by hand.

Each layer has an explicit forward and backward pass that reads like the math,
is checked against finite differences and PyTorch autograd, and can explain
itself. See the README for a tour of the seed's five SGD steps.
"""

from __future__ import annotations

from .errors import DataSourceError, DivergenceError, ModelFileError
from .inference import Predictor, load_predictor
from .layers import (
    GELU,
    Activation,
    Identity,
    Layer,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ReLU,
    Scale,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
)
from .losses import (
    LOSSES,
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Loss,
    MSELoss,
    SquaredErrorLoss,
    make_loss,
)
from .model import MLP, Sequential, TwoLayerNet
from .optim import OPTIMIZERS, SGD, Adam, CosineLR, Optimizer, Schedule, StepLR, make_optimizer
from .registry import ACTIVATIONS, activation_names, make_activation, register_activation, register_loss

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS", "GELU", "LOSSES", "MLP", "OPTIMIZERS", "SGD", "Activation", "Adam", "BCELoss",
    "BCEWithLogitsLoss", "CosineLR", "CrossEntropyLoss", "DataSourceError", "DivergenceError", "Identity", "Layer",
    "LeakyReLU", "Linear", "LogSoftmax", "Loss", "MSELoss", "ModelFileError", "Optimizer", "Predictor", "ReLU",
    "Scale", "Schedule", "Sequential", "Sigmoid", "Softmax", "Softplus", "SquaredErrorLoss", "StepLR", "Tanh",
    "TwoLayerNet", "activation_names", "load_predictor", "make_activation", "make_loss", "make_optimizer",
    "register_activation", "register_loss", "__version__",
]
