import pytest
import torch

from alexnet_book.cifar_nets import CifarAlexNet, ConvLocal, Layers80Sec, gaussian_init_
from alexnet_book.lrn import LRN
from alexnet_book.model import count_parameters, torch_init_
from alexnet_book.summary import alike_groups, layer_table, same_network_as


def shapes(model):
    table = layer_table(model, input_size=(3, 32, 32)).set_index("layer")
    return table["output_shape"].to_dict()


def test_layers_80sec_matches_the_cuda_convnet_config():
    model = Layers80Sec("tanh")
    out = shapes(model)
    # cuda-convnet's pooling sizes: 32 -> 16 -> 8 -> 4, so fc4 sees 64 x 4 x 4
    assert (out["pool1"], out["pool2"], out["pool3"]) == ("32x16x16", "32x8x8", "64x4x4")
    assert list(model.features)[1:3] == [model.features.pool1, model.features.act1]  # ReLU after the max pool
    assert isinstance(model.features.act1, torch.nn.Tanh)
    # 5x5 convs 3->32->32->64, fc 1024->64->10
    assert count_parameters(model) == (3 * 25 * 32 + 32) + (32 * 25 * 32 + 32) + (32 * 25 * 64 + 64) + (1024 * 64 + 64) + (64 * 10 + 10)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_conv_local_is_the_11pct_config_and_lrn_is_the_only_difference():
    with_lrn, without = ConvLocal(lrn=True), ConvLocal(lrn=False)
    names = [n for n, _ in with_lrn.features.named_children()]
    # rnorm1 after pool1, rnorm2 after conv2's ReLU and before pool2, as in layers-conv-local-11pct
    assert names[names.index("pool1") + 1] == "lrn1" and names[names.index("lrn1") + 1] == "conv2"
    assert names[names.index("act2") + 1] == "lrn2" and names[names.index("lrn2") + 1] == "pool2"
    assert [n for n in names if not n.startswith("lrn")] == [n for n, _ in without.features.named_children()]
    assert count_parameters(with_lrn) == count_parameters(without)
    for lrn in (with_lrn.features.lrn1, with_lrn.features.lrn2):
        assert (lrn.size, lrn.alpha, lrn.beta, lrn.k, lrn.divide_alpha_by_n) == (9, 1e-3, 0.75, 2.0, True)
    out = shapes(with_lrn)
    # local3 and local4 stand-ins: 64 then 32 filters on 8x8
    assert (out["lrn1"], out["conv3"], out["conv4"]) == ("64x16x16", "64x8x8", "32x8x8")
    assert with_lrn(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("pool_size", [3, 2])
def test_cifar_alexnet_pooling_variants_have_matched_sizes(pool_size):
    out = shapes(CifarAlexNet(pool_size=pool_size))
    assert (out["pool1"], out["pool2"], out["pool5"]) == ("32x16x16", "64x8x8", "64x4x4")
    assert count_parameters(CifarAlexNet(pool_size=pool_size)) == count_parameters(CifarAlexNet())


def test_cifar_alexnet_options():
    model = CifarAlexNet(lrn=None, dropout=0.3, activation="tanh")
    assert not any(isinstance(m, LRN) for m in model.modules())
    assert model.classifier.dropout6.p == model.classifier.dropout7.p == 0.3
    assert isinstance(CifarAlexNet().features.lrn2, LRN)
    with pytest.raises(ValueError, match="pool_size must be 3"):
        CifarAlexNet(pool_size=4)


def test_grouped_cifar_alexnet_keeps_the_halves_apart_where_the_paper_did():
    grouped = CifarAlexNet(groups=2)
    layers = grouped.features
    assert [getattr(layers, f"conv{i}").groups for i in range(1, 6)] == [1, 2, 1, 2, 2]  # conv3 crosses, as in the paper
    assert layers.lrn1.groups == layers.lrn2.groups == 2
    # conv2's first half sees only conv1's first half: a change to conv1's second half leaves it alone
    x = torch.randn(2, 32, 16, 16)
    y = layers.conv2(x)
    x[:, 16:] += 1.0
    assert torch.equal(layers.conv2(x)[:, :32], y[:, :32]) and not torch.equal(layers.conv2(x)[:, 32:], y[:, 32:])
    assert count_parameters(grouped) < count_parameters(CifarAlexNet())
    assert grouped(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_gaussian_init_sets_each_layer_std_and_zero_biases():
    torch.manual_seed(0)
    model = gaussian_init_(Layers80Sec(), Layers80Sec.CUDA_CONVNET_INIT)
    for name, std in Layers80Sec.CUDA_CONVNET_INIT.items():
        layer = getattr(model.features, name, None) or getattr(model.classifier, name)
        assert layer.weight.std().item() == pytest.approx(std, rel=0.15)
        assert torch.count_nonzero(layer.bias) == 0
    with pytest.raises(KeyError, match="no init std for layer 'conv3'"):
        gaussian_init_(Layers80Sec(), {"conv1": 1.0, "conv2": 1.0})


@pytest.mark.parametrize("layer", ["conv3", "conv4", "conv5"])
def test_cifar_alexnet_without_a_middle_conv_layer(layer):
    model = CifarAlexNet(without=layer)
    names = [n for n, _ in model.features.named_children()]
    assert layer not in names and f"act{layer[-1]}" not in names and "pool5" in names
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    full = shapes(CifarAlexNet())
    assert shapes(model)["pool5"] == full["pool5"] == "64x4x4"  # fc6 unchanged
    assert count_parameters(model) < count_parameters(CifarAlexNet())
    with pytest.raises(ValueError, match="only a middle conv layer"):
        CifarAlexNet(without="conv1")


def test_cifar_alexnet_starts_from_he_init_and_torch_init_restores_the_default():
    torch.manual_seed(0)
    net = CifarAlexNet()
    conv3, fc6 = net.features.conv3, net.classifier.fc6
    for layer in (conv3, fc6):
        fan_in = layer.weight[0].numel()
        assert layer.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.05)
        assert (layer.bias == 0).all()
    assert "init: he_init_" in repr(net)  # so checkpoint.run_path changes with the init
    torch_init_(net)
    bound = 1 / conv3.weight[0].numel() ** 0.5  # PyTorch's kaiming_uniform(a=sqrt(5)) bound
    assert conv3.weight.abs().max().item() <= bound and (conv3.bias != 0).any()


def test_removing_conv3_conv4_or_conv5_gives_one_network():
    nets = {name: CifarAlexNet(without=layer) for name, layer in
            {"full": None, "-conv3": "conv3", "-conv4": "conv4", "-conv5": "conv5"}.items()}
    nets["narrow -conv4"] = CifarAlexNet(without="conv4", widths=(32, 64, 80, 96, 64))  # conv3 80 wide
    assert same_network_as(nets) == {"full": "full", "-conv3": "-conv3", "-conv4": "-conv3", "-conv5": "-conv3",
                                     "narrow -conv4": "narrow -conv4"}
    assert alike_groups(same_network_as(nets)) == {"full": ["full"], "-conv3": ["-conv3", "-conv4", "-conv5"],
                                                   "narrow -conv4": ["narrow -conv4"]}
    # the same architecture under other layer names: the same weights from the same seed, so the same outputs
    torch.manual_seed(0)
    a = CifarAlexNet(without="conv3").eval()
    torch.manual_seed(0)
    b = CifarAlexNet(without="conv5").eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(a(x), b(x))
