"""hydra/launcher=stacked: a multirun's compatible jobs trained as one stacked model.

grouping: which jobs stack and why a job runs alone; launch: the Launcher's work; run:
one stack from configs to finished run directories; jobs: a job's own directory and
files; display: the terminal while a stack trains.
"""
