"""Overrides read and written as Hydra reads them: quoting, lists, null, +/~, sweeps, groups."""

import pytest
import yaml
from hydra.core.override_parser.types import ChoiceSweep, RangeSweep

from dlrun import overrides as ov


@pytest.mark.parametrize(
    ("text", "key", "prefix", "value"),
    [
        ("optim.lr=0.1", "optim.lr", "", 0.1),
        ("+trainer.extra=1", "trainer.extra", "+", 1),
        ("++a.b=c", "a.b", "++", "c"),
        ("~model.hidden", "model.hidden", "~", None),
        ("model.hidden=[64,32]", "model.hidden", "", [64, 32]),
        ("data.test_shift=null", "data.test_shift", "", None),
        ("data.path='my file.csv'", "data.path", "", "my file.csv"),
        ("data.target='a=b'", "data.target", "", "a=b"),
        ("trainer.resume=outputs/runs/2024-01-01/12-00-00", "trainer.resume", "",
         "outputs/runs/2024-01-01/12-00-00"),
    ],
)
def test_parse_reads_key_prefix_and_value(text, key, prefix, value):
    parsed = ov.parse(text)
    assert (parsed.key, parsed.prefix, parsed.value, parsed.text) == (key, prefix, value, text)
    assert not parsed.is_sweep and ov.key(text) == key


def test_groups_group_paths_and_packages():
    assert ov.parse("model=cnn").is_group and ov.parse("model=cnn").options() == ["cnn"]
    assert ov.parse("reg=[l2,dropout]").options() == ["l2", "dropout"]
    launcher = ov.parse("hydra/launcher=joblib")
    assert launcher.is_group and launcher.key == "hydra/launcher" and launcher.value == "joblib"
    packaged = ov.parse("optim@extra=adam")
    assert packaged.is_group and (packaged.key, packaged.package) == ("optim", "extra")
    assert not ov.parse("model.hidden=[8]").is_group
    assert not ov.parse("mode=lr_find").is_group  # a key of the root, not a group


def test_sweeps_are_sweeps():
    choice = ov.parse("optim.lr=0.1,0.01")
    assert choice.is_sweep and isinstance(choice.value, ChoiceSweep)
    assert choice.value.list == [0.1, 0.01] and choice.value_text == "0.1,0.01"
    assert ov.parse("model=mlp,cnn").is_sweep and ov.parse("model=mlp,cnn").options() == []
    assert isinstance(ov.parse("trainer.seed=range(0,3)").value, RangeSweep)
    assert not ov.parse("model.hidden=[1,2]").is_sweep  # a list, not two jobs


@pytest.mark.parametrize(
    "value",
    [None, True, False, 0, 3, 0.1, 3e-05, 1e5, [64, 32], ["l2", "dropout"], [], "adam",
     "my file.csv", " padded ", "null", "true", "1.0", "a,b", "x=y", "it's", "[x]",
     "range(1,2)", "outputs/runs/2024-01-01/12-00-00", "a\\b'", {"a": 1, "b": [1, 2]}],
)
def test_format_parses_back_to_the_same_value(value):
    text = ov.format("some.key", value)
    parsed = ov.parse(text)
    assert parsed.key == "some.key" and parsed.value == value and not parsed.is_sweep
    assert ov.format("some.key", parsed.value) == text  # parse -> format -> parse is stable


def test_format_writes_lists_null_and_quotes_only_where_needed():
    assert ov.format("model.hidden", [256, 256]) == "model.hidden=[256,256]"
    assert ov.format("data.n_train", None) == "data.n_train=null"
    assert ov.format("model.batchnorm", True) == "model.batchnorm=true"
    assert ov.format("optim", "adam") == "optim=adam"
    assert ov.format("data.path", "my file.csv") == "data.path='my file.csv'"
    assert ov.format("data.task", "null") == "data.task='null'"  # the string, not None
    assert ov.format("x", 1, prefix="+") == "+x=1"


@pytest.mark.parametrize(
    ("argv", "flags", "overrides"),
    [
        (["-m", "optim.lr=0.1,0.01"], ["-m"], ["optim.lr=0.1,0.01"]),
        (["-cd", "my conf", "model=mine"], ["-cd", "my conf"], ["model=mine"]),
        (["--config-dir=DIR", "-cn", "other", "a=1"], ["--config-dir=DIR", "-cn", "other"], ["a=1"]),
        (["model=cnn", "--cfg", "job"], ["--cfg", "job"], ["model=cnn"]),
        (["--info", "defaults", "~x"], ["--info", "defaults"], ["~x"]),
        (["--info", "a=1"], ["--info"], ["a=1"]),  # --info's value is optional
        (["-cp", "conf", "--resolve", "-p", "model", "+b=2"],
         ["-cp", "conf", "--resolve", "-p", "model"], ["+b=2"]),
    ],
)
def test_split_argv_separates_hydra_flags_from_overrides(argv, flags, overrides):
    assert ov.split_argv(argv) == (flags, overrides)


USER = ["model=mlp", "model.hidden=[8]", "optim.lr=0.5", "reg=[l2]", "reg.l2.strength=0.1",
        "trainer.resume=outputs/x"]


def test_merge_replaces_the_same_key_in_place_and_appends_new_ones():
    assert ov.merge(USER, ["optim.lr=0.05", "trainer.epochs=9"]) == [
        "model=mlp", "model.hidden=[8]", "optim.lr=0.05", "reg=[l2]", "reg.l2.strength=0.1",
        "trainer.resume=outputs/x", "trainer.epochs=9"]
    assert ov.merge(["+optim.lr=0.5"], ["optim.lr=0.1"]) == ["optim.lr=0.1"]  # the key, not the text


def test_merge_resets_a_switched_group_and_drops_what_it_is_told():
    assert ov.merge(USER, ["model=cnn"], drop=["trainer.resume"]) == [
        "model=cnn", "optim.lr=0.5", "reg=[l2]", "reg.l2.strength=0.1"]
    # a key inside a dropped key goes too (lr_find.* with lr_find)
    assert ov.merge(["mode=lr_find", "lr_find.steps=50", "optim=adam"], [],
                    drop=["mode", "lr_find"]) == ["optim=adam"]


def test_merge_keeps_the_keys_of_options_a_list_group_still_chooses():
    user = ["reg=[l2,dropout]", "reg.l2.strength=0.1", "reg.dropout.p=0.2"]
    assert ov.merge(user, ["reg=[l2,augment]"]) == ["reg=[l2,augment]", "reg.l2.strength=0.1"]
    assert ov.merge(user, ["reg=l2"]) == ["reg=l2"]  # one option: the group is switched


def test_value_of_reads_the_last_override_of_a_key():
    assert ov.value_of(["experiment=good", "+experiment=overfitting"], "experiment") == "overfitting"
    assert ov.value_of(["~experiment"], "experiment") is None
    assert ov.value_of(["model.hidden=[4]"], "model.hidden") == [4]
    assert ov.value_of(["not an override ]["], "x", default=3) == 3


def test_command_quotes_for_the_shell():
    assert ov.command(["data=digits", "reg=[dropout]"]) == "dlrun data=digits 'reg=[dropout]'"
    assert ov.command(["a=1"], flags=["-cd", "my conf"]) == "dlrun -cd 'my conf' a=1"


def test_a_resume_puts_the_saved_overrides_first_and_lets_typed_ones_win(tmp_path):
    (tmp_path / ".hydra").mkdir()
    saved = ["model=cnn", "optim.lr=0.1", "trainer.epochs=5"]
    (tmp_path / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(saved))
    argv = ["-cd", "conf", f"trainer.resume={tmp_path}", "trainer.epochs=50"]
    assert ov.with_resumed_overrides(argv) == [
        "-cd", "conf", "model=cnn", "optim.lr=0.1", f"trainer.resume={tmp_path}", "trainer.epochs=50"]
    assert ov.with_resumed_overrides(["trainer.epochs=3"]) == ["trainer.epochs=3"]
