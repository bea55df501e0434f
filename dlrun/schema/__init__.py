"""Structured-config schemas, one module per config group, registered in Hydra's ConfigStore.

Each YAML option extends its schema with `- /_schema_<group>_<option>@_here_` in its
defaults list, so every knob has a type and `optim.lr=fast` or `trainer.epochz=3`
fail inside Hydra with its own message. A schema field also holds the knob's default,
range and meaning (`dlrun.schema.knobs`); the YAML sets only what its option changes.
No torch here: `dlrun --help` stays fast.
"""

from hydra.core.config_store import ConfigStore

from dlrun.schema import (
    cv,
    data,
    diagnose,
    follow,
    logger,
    loss,
    lr_find,
    model,
    optim,
    reg,
    run,
    sched,
    tokens,
    trainer,
)

GROUPS = (trainer, optim, model, data, tokens, reg, loss, sched, cv, lr_find, diagnose, follow,
          logger, run)


def register_schemas() -> None:
    store = ConfigStore.instance()
    for module in GROUPS:
        for name, node in module.SCHEMAS.items():
            store.store(name=name, node=node)
