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
    names = {name: {b.split("@")[0] for b in p.budgets} for name, p in PROFILES.items()}
    assert names["smoke"] == names["cifar"] == names["imagenet"]


def test_a_device_budget_takes_precedence_on_that_device_only():
    cifar = get_profile("cifar")
    assert cifar.budget("08_full_training", "cuda") == cifar.budgets["08_full_training@cuda"]
    assert cifar.budget("08_full_training", "cpu") == cifar.budgets["08_full_training"]
    assert cifar.budget("01_architecture", "cuda") == cifar.budget("01_architecture")


def test_every_training_notebook_has_a_converged_gpu_budget():
    cifar = get_profile("cifar")
    training = sorted(name for name in cifar.budgets if "@" not in name and cifar.budgets[name].epochs > 1)
    assert training == ["02_relu_vs_tanh", "03_local_response_norm", "04_overlapping_pooling", "05_data_augmentation",
                        "06_dropout", "07_training_recipe", "08_full_training", "09_qualitative",
                        "10_depth_ablation", "12_your_own_images"]
    for name in training[:-1]:
        gpu = cifar.budget(name, "cuda")
        cpu = cifar.budget(name, "cpu")
        assert gpu.train_size is None and len(gpu.seeds) >= max(5, len(cpu.seeds)) and gpu.epochs > cpu.epochs, name
    # notebook 12 is one run, no claim: on a GPU more of its classes' photos and epochs enough for the schedule
    own, own_gpu = cifar.budget("12_your_own_images", "cpu"), cifar.budget("12_your_own_images", "cuda")
    assert own_gpu.train_size > own.train_size and own_gpu.epochs > own.epochs and own_gpu.seeds == own.seeds



def test_missing_budget_names_the_ones_there():
    with pytest.raises(KeyError, match="has no budget for '99_nothing'; it has: 00_setup"):
        get_profile("smoke").budget("99_nothing")
