"""Sweep-level work: record failed jobs, compare the jobs of a multirun, rebuild that comparison.

`job` wraps one multirun job so that its failure is written into its directory
instead of ending the sweep; `summary` reads a sweep directory back into one
table (sweep_summary.json / .md, a rich table); `callback` runs it after every
multirun. Nothing here imports torch.
"""
