"""Schemas of the `data` group: the knobs every dataset shares, then each one's own.

A dataset's class restates a shared knob only to say what it means there (its test
shifts, say); the range stays the one stated here on DataConfig.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from dlrun.schema.knobs import (
    FRACTION,
    NON_NEGATIVE,
    OPEN_FRACTION,
    POSITIVE,
    at_least,
    between,
    knob,
    one_of,
)

TABLE_SHIFTS = "offset | scale | noise: test features moved by 1 std, spread 1.5x, or noised"
PLANE_SHIFTS = "offset | scale | noise | rotate (the plane by 30 degrees)"
IMAGE_SHIFTS = "invert | rotate (90 degrees) | noise"


def shifts(options: str):
    """`test_shift` as one dataset offers it."""
    return knob(None, f"the test split from a shifted distribution: {options}")


def noise(default: float, meaning: str = "std of the Gaussian noise on each example"):
    return knob(default, meaning, NON_NEGATIVE)


def length(default: int, meaning: str):
    return knob(default, meaning, at_least(1, " steps"))


def task():
    return knob(None, "regression | binary | multiclass (null: inferred from the target)",
                one_of("regression", "binary", "multiclass",
                       text="must be regression, binary or multiclass"))


def n_classes():
    return knob(None, "null: the largest label + 1",
                at_least(2, ", or null for the largest label + 1"))


@dataclass
class DataConfig:
    _target_: str = MISSING
    n_train: int | None = knob(None, "subsample the training split to this many examples; "
                               "null: all of it", at_least(1, ", or null for all of it"), common=True)
    val_fraction: float = knob(
        0.2, "share of the training distribution held out for validation", OPEN_FRACTION)
    test_fraction: float = knob(
        0.2, "share held out for test (datasets without a test set)", OPEN_FRACTION)
    label_noise: float = knob(
        0.0, "fraction of training labels (regression: targets) replaced by random ones",
        FRACTION, common=True)
    test_shift: str | None = knob(
        None, "build the test split from a shifted distribution", common=True)
    train_shift_fraction: float = knob(
        0.0, "share of the training examples drawn the way the test split is shifted (needs "
        "data.test_shift): training data from the test's distribution, the remedy for a mismatch",
        between(0, 1))


@dataclass
class GeneratedConfig(DataConfig):
    """A dataset generated from the seed: `n` examples before the splits."""

    n: int = knob(1000, "examples generated before the splits", at_least(10, " examples"))


# --- scikit-learn's bundled tables ---------------------------------------------------


@dataclass
class DigitsConfig(DataConfig):
    _target_: str = "dlrun.data.digits"
    flat: bool = knob(False, "true: 64 features; false: 1x8x8 images (MLPs flatten them anyway)")
    test_shift: str | None = shifts("invert | rotate | noise")


@dataclass
class IrisConfig(DataConfig):
    _target_: str = "dlrun.data.iris"
    test_shift: str | None = shifts(TABLE_SHIFTS)


@dataclass
class WineConfig(DataConfig):
    _target_: str = "dlrun.data.wine"
    test_shift: str | None = shifts(TABLE_SHIFTS)


@dataclass
class BreastCancerConfig(DataConfig):
    _target_: str = "dlrun.data.breast_cancer"
    test_shift: str | None = shifts(TABLE_SHIFTS)


@dataclass
class DiabetesConfig(DataConfig):
    _target_: str = "dlrun.data.diabetes"
    test_shift: str | None = shifts(TABLE_SHIFTS)


# --- generated from a seed -----------------------------------------------------------


@dataclass
class SineConfig(GeneratedConfig):
    _target_: str = "dlrun.data.sine"
    noise: float = noise(0.1, "std of the Gaussian noise on y")
    low: float = knob(-3.0, "x is uniform in [low, high]")
    high: float = knob(3.0, "x is uniform in [low, high]")
    frequency: float = knob(1.0, "y = function(frequency * x)")
    function: str = knob("sin", "sin | cos | square | cubic | abs | step | sinc")
    test_shift: str | None = shifts("extrapolate: the test x lie outside [low, high]")


@dataclass
class MoonsConfig(GeneratedConfig):
    _target_: str = "dlrun.data.moons"
    noise: float = noise(0.2, "std of the Gaussian noise on each point")
    test_shift: str | None = shifts(PLANE_SHIFTS)


@dataclass
class CirclesConfig(GeneratedConfig):
    _target_: str = "dlrun.data.circles"
    noise: float = noise(0.1, "std of the Gaussian noise on each point")
    factor: float = knob(0.5, "inner radius / outer radius", OPEN_FRACTION)
    test_shift: str | None = shifts(PLANE_SHIFTS)


@dataclass
class SpiralsConfig(GeneratedConfig):
    _target_: str = "dlrun.data.spirals"
    n: int = 1500
    arms: int = knob(3, "classes, one per arm (2 arms: a binary task)",
                     at_least(2, " (one class per arm)"))
    noise: float = noise(0.05, "std of the Gaussian noise on each point")
    turns: float = knob(1.0, "how far each arm winds", POSITIVE)
    test_shift: str | None = shifts(PLANE_SHIFTS)


# --- sequences (N, T, F) -------------------------------------------------------------


@dataclass
class AddingConfig(GeneratedConfig):
    _target_: str = "dlrun.data.adding"
    n: int = 2000
    length: int = length(50, "steps per sequence; long ones make plain RNNs' gradients vanish")
    test_shift: str | None = shifts(
        "noise (values noised, targets clean) | scale (values in [0, 2): larger sums)")


@dataclass
class ParityConfig(GeneratedConfig):
    _target_: str = "dlrun.data.parity"
    n: int = 2000
    length: int = length(8, "bits per sequence")
    per_step: bool = knob(False, "label every prefix: y of shape (N, length)")
    label_noise: float = knob(
        0.0, "fraction of training labels flipped (per_step: of all training steps' labels)")
    test_shift: str | None = shifts(
        "noise (bits noised, labels clean) | density (ones with probability 0.8)")


@dataclass
class MNIST1DConfig(GeneratedConfig):
    _target_: str = "dlrun.data.mnist1d"
    n: int = knob(5000, "generated examples; 80% train (+val), 20% test")
    generator_seed: int = knob(42, "the generator's seed; 42 is the paper's dataset")
    shuffle_seq: bool = knob(False, "true: permute the time axis (the paper's ablation)")
    cache_dir: str | None = knob(
        "~/.cache/dlrun", "generated arrays are kept here as .npz; null: regenerate every run")
    test_fraction: float = knob(0.2, "unused: the dataset has its own test set")
    test_shift: str | None = shifts(
        "noise (test generated with more noise) | flip (signals reversed in time)")


# --- images through torchvision's file layout ----------------------------------------


@dataclass
class ImageConfig(DataConfig):
    root: str = knob("data", "the folder holding MNIST/raw, FashionMNIST/raw or cifar-10-batches-py")
    download: bool = knob(
        False, "true: fetch missing files from the internet (torchvision's mirrors)")
    test_fraction: float = knob(0.2, "unused: the dataset has its own test set")
    test_shift: str | None = shifts(IMAGE_SHIFTS)


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
    path: str | None = knob(None, "the CSV file: a header line, numeric columns")
    target: str | None = knob(None, "the label column; null: the last column")
    task: str | None = task()
    n_classes: int | None = n_classes()
    delimiter: str = knob(",", "the column separator")
    test_shift: str | None = shifts(TABLE_SHIFTS)


@dataclass
class NPZConfig(DataConfig):
    _target_: str = "dlrun.data.npz"
    path: str | None = knob(
        None, "np.savez(path, x=..., y=...), optionally with x_test and y_test (the test split)")
    task: str | None = task()
    n_classes: int | None = n_classes()
    standardize: str | None = knob("feature", "feature | channel (images) | last (sequences) | null")
    test_fraction: float = knob(0.2, "unused when the npz has x_test/y_test")
    test_shift: str | None = shifts(TABLE_SHIFTS)


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
