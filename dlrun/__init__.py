"""dlrun: compose a deep-learning run from config groups, train it, and diagnose it."""

__version__ = "0.1.0"
