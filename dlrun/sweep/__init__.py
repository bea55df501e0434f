"""Sweep-level work: record failed jobs, compare the jobs of a multirun, search with Optuna.

`job` wraps one multirun job so that its failure is written into its directory
instead of ending the sweep; `summary` reads a sweep directory back into one
table (sweep_summary.json / .md, a rich table); `callback` runs it after every
multirun. The Optuna search (`hparams_search=...`, plugin class in
hydra_plugins/dlrun_optuna_sweeper): `space` reads the search space, `study` keeps the
study in the sweep directory, `search` asks, launches and tells, `trial` reports a job's
epochs to its trial. Nothing here imports torch.
"""
