"""Stacked training: K small jobs of one architecture trained as one model with a leading job
dimension (hydra/launcher=stacked). Each job keeps its own initialization, batches,
optimizer hyperparameters, schedule, regularization and files; see loop.py."""

from dlrun.train.stacked.loop import Stack, StackJob, fit_stack

__all__ = ["Stack", "StackJob", "fit_stack"]
