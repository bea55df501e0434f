"""Follow the map: from a run to a `good` one, one batch of remedies per round.

The walk is plain code over typed records so that it can be tested without Hydra:
`outcome` reads what a run ended with, `measurement` says which remedies must never be
followed, `walk` chooses batches, judges them and decides when to stop, `path` holds the
record of the walk, and `tree`, `files` and `plot` show it. `sweep` connects the walk to
Hydra's launcher (the Sweeper plugin in hydra_plugins/dlrun_follow_sweeper delegates there).
"""
