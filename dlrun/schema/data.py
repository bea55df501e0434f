"""Schemas of the `data` group: the knobs every dataset shares, then each one's own."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING


@dataclass
class DataConfig:
    _target_: str = MISSING
    n_train: int | None = None  # subsample the training split to this many examples
    val_fraction: float = 0.2  # share of the training distribution held out for validation
    test_fraction: float = 0.2  # share held out for test (datasets without a test set)
    label_noise: float = 0.0  # fraction of training labels replaced by random ones
    test_shift: str | None = None  # build the test split from a shifted distribution
    train_shift_fraction: float = 0.0  # share of training examples drawn the test split's way


# --- scikit-learn's bundled tables ---------------------------------------------------


@dataclass
class DigitsConfig(DataConfig):
    _target_: str = "dlrun.data.digits"
    flat: bool = False  # 64 features instead of a 1x8x8 image


@dataclass
class IrisConfig(DataConfig):
    _target_: str = "dlrun.data.iris"


@dataclass
class WineConfig(DataConfig):
    _target_: str = "dlrun.data.wine"


@dataclass
class BreastCancerConfig(DataConfig):
    _target_: str = "dlrun.data.breast_cancer"


@dataclass
class DiabetesConfig(DataConfig):
    _target_: str = "dlrun.data.diabetes"


# --- generated from a seed -----------------------------------------------------------


@dataclass
class SineConfig(DataConfig):
    _target_: str = "dlrun.data.sine"
    n: int = 1000
    noise: float = 0.1
    low: float = -3.0
    high: float = 3.0
    frequency: float = 1.0
    function: str = "sin"  # sin | cos | square | cubic | abs | step | sinc


@dataclass
class MoonsConfig(DataConfig):
    _target_: str = "dlrun.data.moons"
    n: int = 1000
    noise: float = 0.2


@dataclass
class CirclesConfig(DataConfig):
    _target_: str = "dlrun.data.circles"
    n: int = 1000
    noise: float = 0.1
    factor: float = 0.5  # inner radius / outer radius


@dataclass
class SpiralsConfig(DataConfig):
    _target_: str = "dlrun.data.spirals"
    n: int = 1500
    arms: int = 3  # one class per arm
    noise: float = 0.05
    turns: float = 1.0


# --- sequences (N, T, F) -------------------------------------------------------------


@dataclass
class AddingConfig(DataConfig):
    _target_: str = "dlrun.data.adding"
    n: int = 2000
    length: int = 50  # steps per sequence; long ones make plain RNNs' gradients vanish


@dataclass
class ParityConfig(DataConfig):
    _target_: str = "dlrun.data.parity"
    n: int = 2000
    length: int = 8
    per_step: bool = False  # label every prefix: y of shape (N, length)


@dataclass
class MNIST1DConfig(DataConfig):
    _target_: str = "dlrun.data.mnist1d"
    n: int = 5000  # generated examples; 80% train (+val), 20% test
    generator_seed: int = 42  # 42 is the paper's dataset
    shuffle_seq: bool = False  # permute the time axis (destroys spatial structure)
    cache_dir: str | None = "~/.cache/dlrun"  # generated arrays kept as .npz; null: no cache


# --- images through torchvision's file layout ----------------------------------------


@dataclass
class ImageConfig(DataConfig):
    root: str = "data"  # holds MNIST/raw, FashionMNIST/raw or cifar-10-batches-py
    download: bool = False  # fetch missing files from the internet (torchvision's mirrors)


@dataclass
class MNISTConfig(ImageConfig):
    _target_: str = "dlrun.data.mnist"


@dataclass
class FashionMNISTConfig(ImageConfig):
    _target_: str = "dlrun.data.fashion_mnist"


@dataclass
class CIFAR10Config(ImageConfig):
    _target_: str = "dlrun.data.cifar10"


# --- the user's own files ------------------------------------------------------------


@dataclass
class CSVConfig(DataConfig):
    _target_: str = "dlrun.data.csv"
    path: str | None = None
    target: str | None = None  # the label column; null: the last column
    task: str | None = None  # regression | binary | multiclass
    n_classes: int | None = None  # null: the largest label + 1
    delimiter: str = ","


@dataclass
class NPZConfig(DataConfig):
    _target_: str = "dlrun.data.npz"
    path: str | None = None
    task: str | None = None  # regression | binary | multiclass
    n_classes: int | None = None  # null: the largest label + 1
    standardize: str | None = "feature"  # feature | channel | last | null


SCHEMAS = {
    "_schema_data_digits": DigitsConfig,
    "_schema_data_iris": IrisConfig,
    "_schema_data_wine": WineConfig,
    "_schema_data_breast_cancer": BreastCancerConfig,
    "_schema_data_diabetes": DiabetesConfig,
    "_schema_data_sine": SineConfig,
    "_schema_data_moons": MoonsConfig,
    "_schema_data_circles": CirclesConfig,
    "_schema_data_spirals": SpiralsConfig,
    "_schema_data_adding": AddingConfig,
    "_schema_data_parity": ParityConfig,
    "_schema_data_mnist1d": MNIST1DConfig,
    "_schema_data_mnist": MNISTConfig,
    "_schema_data_fashion_mnist": FashionMNISTConfig,
    "_schema_data_cifar10": CIFAR10Config,
    "_schema_data_csv": CSVConfig,
    "_schema_data_npz": NPZConfig,
}
