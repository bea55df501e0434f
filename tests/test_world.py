"""The single-process World: every collective leaves things as they are, so `fit` trains the
same with it as it always did, and its evaluate is the one evaluate."""

import torch
from conftest import compose

from dlrun.build import build_components
from dlrun.train.distributed import World, setup
from dlrun.train.evaluate import evaluate


def test_a_process_alone_changes_nothing():
    world = World()
    model = torch.nn.Linear(3, 2)
    x, y = torch.randn(5, 3), torch.randint(0, 2, (5,))
    assert world.is_main and world.size == 1 and world.wrap(model) is model
    xs, ys = world.shard(x, y)
    assert xs is x and ys is y
    total = torch.tensor(3.0)
    assert world.mean(total) is total and world.add_up({"loss": total}) == {"loss": total}
    assert world.any(True) and not world.any(False)
    assert world.stops_now(True) and not world.stops_now(False)
    criterion = torch.nn.functional.cross_entropy
    assert torch.equal(world.batch_loss(criterion, model(x), y, rows=5), criterion(model(x), y))


def test_without_ranks_setup_gives_a_world_on_the_configured_device(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    world = setup(compose("trainer.device=cpu").trainer)
    assert type(world) is World and world.device == torch.device("cpu")


def test_its_evaluate_is_the_evaluate(one_thread):
    parts = build_components(compose("data.n_train=100"), torch.device("cpu"))
    split = parts.data.split("val")
    ours = World().evaluate(parts.model, *split, parts.data.task, 16, parts.loss)
    plain = evaluate(parts.model, *split, parts.data.task, 16, parts.loss)
    assert ours.keys() == plain.keys() == {"loss", "acc"}
    assert all(torch.equal(ours[k], plain[k]) for k in ours)
