import pytest

from alexnet_book.profiles import PROFILES, get_profile


def test_default_is_cifar():
    assert get_profile().name == "cifar"


def test_environment_variable_chooses_profile(monkeypatch):
    monkeypatch.setenv("ALEXNET_BOOK_PROFILE", "smoke")
    assert get_profile().name == "smoke"
    assert get_profile("imagenet").name == "imagenet"  # the papermill parameter wins


def test_unknown_profile_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown profile 'tiny'; valid profiles: smoke, cifar, imagenet"):
        get_profile("tiny")


def test_unknown_profile_from_environment(monkeypatch):
    monkeypatch.setenv("ALEXNET_BOOK_PROFILE", "cifar100")
    with pytest.raises(ValueError, match="valid profiles"):
        get_profile()


def test_every_profile_budgets_the_same_notebooks():
    names = {name: set(p.budgets) for name, p in PROFILES.items()}
    assert names["smoke"] == names["cifar"] == names["imagenet"]


def test_missing_budget_names_the_ones_there():
    with pytest.raises(KeyError, match="has no budget for '99_nothing'; it has: 00_setup"):
        get_profile("smoke").budget("99_nothing")
