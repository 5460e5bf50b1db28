"""Section 6.1's measurements: the colour-specialization score, the group contrast and its
permutation test, fc7 features and nearest neighbours."""

import pytest
import torch

from alexnet_book import qualitative
from alexnet_book.model import AlexNet


def test_colour_specialization_is_0_on_the_grey_axis_and_1_for_pure_colour_contrast():
    grey = torch.randn(1, 1, 11, 11).expand(1, 3, 11, 11)
    contrast = torch.zeros(1, 3, 11, 11)
    contrast[0, 0], contrast[0, 1] = 1.0, -1.0  # red minus green: sums to zero over RGB everywhere
    scores = qualitative.colour_specialization(torch.cat([grey, contrast]))
    assert scores.tolist() == pytest.approx([0.0, 1.0], abs=1e-6)


def test_colour_specialization_is_the_energy_share_off_the_grey_axis():
    grey = torch.ones(1, 3, 2, 2)  # energy 12
    colour = torch.zeros(1, 3, 2, 2)
    colour[0, 0], colour[0, 2] = 1.0, -1.0  # energy 8, orthogonal to grey
    assert qualitative.colour_specialization(grey + colour).item() == pytest.approx(8 / 20)
    assert qualitative.colour_specialization(3 * (grey + colour)).item() == pytest.approx(8 / 20)  # scale-free


def test_group_contrast_finds_two_different_halves_and_not_a_mixed_split():
    noise = 0.01 * torch.randn(96, generator=torch.Generator().manual_seed(0))
    separated = torch.cat([torch.full((48,), 0.1), torch.full((48,), 0.6)]) + noise
    result = qualitative.group_contrast(separated, permutations=2000)
    assert result["difference"] == pytest.approx(0.5, abs=0.01)
    assert result["p_value"] == pytest.approx(1 / 2001)  # no random split comes close
    mixed = separated[torch.randperm(96, generator=torch.Generator().manual_seed(1))]
    assert qualitative.group_contrast(mixed, permutations=2000)["p_value"] > 0.01
    with pytest.raises(ValueError, match="even number"):
        qualitative.group_contrast(torch.rand(5))


def test_conv1_groups_has_one_row_per_seed_with_contrast_and_travel():
    from alexnet_book.cifar_nets import CifarAlexNet

    starts = [CifarAlexNet(), CifarAlexNet()]
    trained = [CifarAlexNet(), CifarAlexNet()]
    trained[0].load_state_dict(starts[0].state_dict())  # seed 0 never moved
    with torch.no_grad():
        trained[1].features.conv1.weight.copy_(3 * starts[1].features.conv1.weight)  # moved by twice its norm
    table = qualitative.conv1_groups(trained, starts, seeds=(0, 1))
    assert table["seed"].tolist() == [0, 1]
    assert table["conv1 travel"].tolist() == pytest.approx([0.0, 2.0], abs=1e-6)
    expected = qualitative.group_contrast(qualitative.colour_specialization(trained[1].features.conv1.weight))
    assert table.loc[1, "difference"] == pytest.approx(expected["difference"])
    with pytest.raises(ValueError):
        qualitative.conv1_groups(trained, starts[:1], seeds=(0, 1))


def test_nearest_orders_by_euclidean_distance_and_same_class_rate_counts_matching_labels():
    bank = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0], [0.0, 2.5]])
    queries = torch.tensor([[0.2, 0.0], [5.0, 4.0]])
    index = qualitative.nearest(queries, bank, k=2)
    assert index.tolist() == [[0, 1], [2, 3]]
    labels = torch.tensor([0, 0, 1, 2])
    assert qualitative.same_class_rate(index, torch.tensor([0, 1]), labels) == pytest.approx(75.0)


def small_alexnet() -> AlexNet:
    torch.manual_seed(0)
    return AlexNet(10, width=0.0625, fc_size=32).eval()


def test_fc7_features_are_the_post_relu_fc7_outputs_whatever_the_batch_size():
    model, images = small_alexnet(), torch.randint(0, 256, (5, 3, 224, 224), dtype=torch.uint8)
    transform = lambda x: x.float() / 255  # noqa: E731
    features = qualitative.fc7_features(model, images, transform, batch_size=2)
    with torch.no_grad():
        c = model.classifier
        expected = c.act7(c.fc7(c.act6(c.fc6(torch.flatten(model.features(transform(images)), 1)))))
    assert features.shape == (5, 32) and (features >= 0).all()
    torch.testing.assert_close(features, expected)
    torch.testing.assert_close(qualitative.fc7_features(model, images, transform, batch_size=5), features)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_a_net_on_the_gpu_hands_back_cpu_numbers():
    model = AlexNet(num_classes=10).cuda()
    assert not qualitative.colour_specialization(model.features.conv1.weight).is_cuda
    images = torch.randint(0, 256, (2, 3, 224, 224), dtype=torch.uint8)
    assert not any(t.is_cuda for t in qualitative.top5(model, images, lambda x: x.float() / 255))


def test_a_recoloured_copy_is_a_near_duplicate_and_another_photo_is_not():
    generator = torch.Generator().manual_seed(0)
    query = torch.randint(0, 200, (1, 3, 8, 8), generator=generator, dtype=torch.uint8)
    other = torch.randint(0, 200, (1, 3, 8, 8), generator=generator, dtype=torch.uint8)
    bank = torch.cat([other, (query.float() * 0.8 + 40).to(torch.uint8), query])  # darker and brighter: the same photo
    index = torch.tensor([[0, 1, 2]])
    correlation = qualitative.pixel_correlation(query, bank, index)
    assert correlation[0, 1:].tolist() == pytest.approx([1.0, 1.0], abs=0.01) and correlation[0, 0] < 0.5
    assert qualitative.near_duplicates(query, bank, index).tolist() == [[False, True, True]]


def test_figure4_names_every_class_and_frames_the_same_photo_in_red():
    import matplotlib

    matplotlib.use("Agg")
    from alexnet_book import feature_plots

    generator = torch.Generator().manual_seed(0)
    queries = torch.randint(0, 256, (2, 3, 8, 8), generator=generator, dtype=torch.uint8)
    bank = torch.cat([queries[:1], torch.randint(0, 256, (3, 3, 8, 8), generator=generator, dtype=torch.uint8)])
    index = torch.tensor([[0, 1], [2, 3]])  # query 0's nearest is its own photo
    fig = feature_plots.neighbours(queries, bank, {"fc7": index}, labels=(torch.tensor([0, 1]), torch.tensor([0, 1, 1, 0])),
                                   names=["cat", "dog"])
    titles = [[ax.get_title() for ax in fig.axes[row * 3:row * 3 + 3]] for row in range(2)]
    assert titles == [["cat", "cat (same photo)", "dog"], ["dog", "dog", "cat"]]
    red = [ax for ax in fig.axes if ax.spines["left"].get_edgecolor() == matplotlib.colors.to_rgba("red")]
    assert red == [fig.axes[1]]
