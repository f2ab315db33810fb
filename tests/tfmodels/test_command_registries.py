"""The command registries: every entry imports, and a module that does not import says so instead of
hiding behind "No such command"."""

from __future__ import annotations

import pkgutil

import click
import pytest
from click.testing import CliRunner

import textclf
from data_prep.dataset_format import TEXT, TOKENS
from serving.contract import TEXT_INPUT, TOKENS_INPUT
from tfmodels import cli, family
from tfmodels.config import TrainConfig


@pytest.mark.parametrize("name", sorted(textclf.COMMANDS))
def test_every_top_level_command_resolves(name: str) -> None:
    assert isinstance(pkgutil.resolve_name(textclf.COMMANDS[name]), click.Command)
    assert textclf.cli.get_command(click.Context(textclf.cli), name) is not None


@pytest.mark.parametrize("name", sorted(family.FAMILIES))
def test_every_family_resolves_to_its_object_and_its_train_command(name: str) -> None:
    registered = family.FAMILIES[name]
    model_family = family.get_family(name)
    assert model_family.name == name == model_family.config_class.family
    assert issubclass(model_family.config_class, TrainConfig)
    command = cli.train.get_command(click.Context(cli.train), name)
    assert command is pkgutil.resolve_name(registered.command) and command.name == name


def test_a_family_whose_module_fails_to_import_surfaces_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = family.Registered(family="tfmodels.no_such_family:FAMILY", command="tfmodels.no_such_family:train")
    monkeypatch.setitem(family.FAMILIES, "broken", broken)
    result = CliRunner().invoke(cli.train, ["broken", "--help"])
    assert isinstance(result.exception, ModuleNotFoundError), result.output
    assert "No such command" not in result.output
    assert "tfmodels.no_such_family" in str(result.exception)


@pytest.mark.parametrize("name", sorted(family.FAMILIES))
def test_every_family_serves_under_a_contract_input_name(name: str) -> None:
    """Contract 2's input names are serving.contract's; the Contract-1 feature a family trains on is
    data_prep's: two contracts, declared apart, so neither can drift into the other unnoticed."""
    model_family = family.get_family(name)
    assert model_family.serving_input in (TOKENS_INPUT, TEXT_INPUT)
    assert model_family.input_feature in (TOKENS, TEXT)
