"""The model, its LRN, the two-tower version and the layer table, against the paper's numbers."""

import contextlib
import subprocess
import sys

import pytest
import torch
import torchvision
from torch import nn

from alexnet_book import lrn as lrn_module
from alexnet_book.backend import exact_fp32
from alexnet_book.lrn import LRN, LRN_CONVENTIONS
from alexnet_book.model import AlexNet, count_parameters, paper_init_
from alexnet_book.summary import layer_table
from alexnet_book.towers import TwoTowerAlexNet, grouped_from_towers, towers_from_grouped
from conftest import assert_close_in_norm

FIGURE2_NEURONS = [253_440, 186_624, 64_896, 64_896, 43_264, 4096, 4096, 1000]


@pytest.fixture(scope="module")
def alexnet():
    """The default (paper) network; tests must not modify it."""
    torch.manual_seed(0)
    return AlexNet().eval()


def conv_params(out_channels, in_per_group, kernel):
    return out_channels * in_per_group * kernel * kernel + out_channels


def fc_params(in_features, out_features):
    return in_features * out_features + out_features


# ---------------------------------------------------------------- parameter counts (C6)


def test_parameter_counts_match_the_paper_and_torchvision(alexnet):
    assert count_parameters(alexnet) == 60_965_224  # groups=2 in conv2, conv4, conv5
    assert count_parameters(AlexNet(groups=1)) == 62_378_344
    assert count_parameters(torchvision.models.alexnet()) == 61_100_840  # reference line only


def test_half_width_counts_by_hand():
    fc = fc_params(4096, 4096) + fc_params(4096, 1000)  # fc7 + fc8, unchanged by width
    # Kernels 48-128-192-192-128; pool5 gives 128 x 6 x 6 = 4608 inputs to fc6.
    ungrouped = [conv_params(48, 3, 11), conv_params(128, 48, 5), conv_params(192, 128, 3),
                 conv_params(192, 192, 3), conv_params(128, 192, 3), fc_params(4608, 4096)]
    assert sum(ungrouped) + fc == 40_702_632
    assert count_parameters(AlexNet(width=0.5, groups=1)) == 40_702_632
    grouped = [conv_params(48, 3, 11), conv_params(128, 24, 5), conv_params(192, 128, 3),
               conv_params(192, 96, 3), conv_params(128, 96, 3), fc_params(4608, 4096)]
    assert sum(grouped) + fc == 40_349_352
    assert count_parameters(AlexNet(width=0.5, groups=2)) == 40_349_352
    # Section 3.2's one-GPU net as its footnote describes it: conv5 and the FC layers kept whole.
    footnote = ungrouped[:4] + [conv_params(256, 192, 3), fc_params(9216, 4096)]
    assert sum(footnote) + fc == 59_798_312
    assert count_parameters(AlexNet(width=(0.5, 0.5, 0.5, 0.5, 1.0), groups=1)) == 59_798_312


def test_width_must_keep_kernels_divisible_by_groups():
    with pytest.raises(ValueError, match="divisible by groups=2"):
        AlexNet(width=0.51, groups=2)  # 49 kernels in conv1


# ---------------------------------------------------------------- layout and shapes


def test_module_names_follow_the_paper(alexnet):
    assert list(alexnet.features._modules) == [
        "conv1", "act1", "lrn1", "pool1", "conv2", "act2", "lrn2", "pool2",
        "conv3", "act3", "conv4", "act4", "conv5", "act5", "pool5",
    ]
    assert list(alexnet.classifier._modules) == ["fc6", "act6", "dropout6", "fc7", "act7", "dropout7", "fc8"]
    assert [alexnet.features[i].groups for i in (0, 4, 8, 10, 12)] == [1, 2, 1, 2, 2]
    assert alexnet.features.lrn1.groups == alexnet.features.lrn2.groups == 2
    assert alexnet.features.lrn1.divide_alpha_by_n and alexnet.features.lrn1.k == 2.0  # cuda-convnet default
    no_lrn = AlexNet(lrn=None, fc_size=16)
    assert not any(isinstance(m, LRN) for m in no_lrn.modules())
    assert "lrn1" not in no_lrn.features._modules


@pytest.mark.parametrize("input_size, padding", [(224, 2), (227, 0)])
def test_output_shapes(input_size, padding):
    torch.manual_seed(0)
    model = AlexNet(input_size=input_size).eval()
    assert model.features.conv1.padding == (padding, padding)
    x = torch.randn(2, 3, input_size, input_size)
    with torch.no_grad():
        assert model.features.conv1(x).shape == (2, 96, 55, 55)
        assert model.features(x).shape == (2, 256, 6, 6)
        assert model(x).shape == (2, 1000)


def test_input_size_225_is_refused_with_the_arithmetic():
    with pytest.raises(ValueError, match=r"54\.25"):
        AlexNet(input_size=225)


def test_non_overlapping_pooling_gives_the_same_sizes():
    model = AlexNet(pool_size=2, fc_size=16, num_classes=10).eval()
    assert model.features.pool1.kernel_size == 2 and model.features.pool1.stride == 2
    assert model.classifier.fc6.in_features == 256 * 6 * 6
    with torch.no_grad():
        assert model.features(torch.randn(1, 3, 224, 224)).shape == (1, 256, 6, 6)


def test_tanh_network():
    torch.manual_seed(0)
    model = AlexNet(activation="tanh", fc_size=64, num_classes=10).eval()
    acts = [m for name, m in model.named_modules() if name.rsplit(".", 1)[-1].startswith("act")]
    assert len(acts) == 7 and all(isinstance(m, nn.Tanh) for m in acts)
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    with torch.no_grad():
        out = model(torch.randn(1, 3, 224, 224))
    assert out.shape == (1, 10) and torch.isfinite(out).all()


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown activation 'gelu'; valid: 'relu', 'tanh'"):
        AlexNet(activation="gelu")
    valid = r"valid: 'paper', 'cuda-convnet', 'caffe'"
    with pytest.raises(ValueError, match=r"unknown LRN convention 'torch'; " + valid):
        AlexNet(lrn="torch")
    with pytest.raises(ValueError, match=valid):
        LRN.convention("Paper")


# ---------------------------------------------------------------- LRN (section 3.3)


def naive_lrn(a, n, alpha, beta, k):
    """Section 3.3's formula, one output channel and one window term at a time."""
    channels = a.shape[1]
    b = torch.empty_like(a)
    for i in range(channels):
        s = torch.zeros_like(a[:, 0])
        for j in range(max(0, i - n // 2), min(channels - 1, i + n // 2) + 1):
            s += a[:, j] ** 2
        b[:, i] = a[:, i] / (k + alpha * s) ** beta
    return b


# The alpha each convention puts in front of the plain sum, and its k.
NAIVE = {"paper": (1e-4, 2.0), "cuda-convnet": (1e-4 / 5, 2.0), "caffe": (1e-4 / 5, 1.0)}
TORCH = {
    "paper": nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0),
    "cuda-convnet": nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
    "caffe": nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0),
}


@pytest.fixture
def activations():
    torch.manual_seed(0)
    # Scaled so that alpha * sum(a^2) is not negligible next to k: the conventions then differ.
    return 100 * torch.randn(2, 13, 4, 4, dtype=torch.float64)


def test_lrn_conventions_are_the_three_names():
    assert list(LRN_CONVENTIONS) == ["paper", "cuda-convnet", "caffe"]


@pytest.mark.parametrize("name", ["paper", "cuda-convnet", "caffe"])
def test_lrn_matches_the_formula_and_torch(name, activations):
    alpha, k = NAIVE[name]
    out = LRN.convention(name)(activations)
    torch.testing.assert_close(out, naive_lrn(activations, 5, alpha, 0.75, k), rtol=1e-12, atol=0)
    torch.testing.assert_close(out, TORCH[name](activations), rtol=1e-12, atol=0)
    assert (out / activations).min() < 0.8  # far from the identity at this scale


def test_lrn_conventions_differ(activations):
    outs = {name: LRN.convention(name)(activations) for name in LRN_CONVENTIONS}
    assert (outs["paper"] - outs["cuda-convnet"]).abs().max() > 0.1
    assert (outs["caffe"] - outs["cuda-convnet"]).abs().max() > 0.1


def test_lrn_generic_constructor(activations):
    lrn = LRN(size=3, alpha=0.01, beta=0.5, k=1.0, divide_alpha_by_n=False)
    torch.testing.assert_close(lrn(activations), naive_lrn(activations, 3, 0.01, 0.5, 1.0), rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="odd"):
        LRN(size=4)


def test_lrn_groups_normalize_each_half_alone():
    torch.manual_seed(0)
    x = 30 * torch.randn(2, 12, 3, 3, dtype=torch.float64)
    halves = [LRN.convention("paper")(h) for h in x.chunk(2, dim=1)]
    grouped = LRN.convention("paper", groups=2)(x)
    torch.testing.assert_close(grouped, torch.cat(halves, dim=1), rtol=1e-12, atol=0)
    assert (grouped - LRN.convention("paper")(x)).abs().max() > 1e-3  # the window is cut at the group edge


def test_lrn_gradients_match_torch(activations):
    ours = activations.clone().requires_grad_()
    theirs = activations.clone().requires_grad_()
    grad_out = torch.randn_like(activations)
    LRN.convention("paper")(ours).backward(grad_out)
    TORCH["paper"](theirs).backward(grad_out)
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-10, atol=1e-12)
    small = activations[:1, :7, :2, :2].clone().requires_grad_()
    assert torch.autograd.gradcheck(LRN.convention("caffe", groups=1), (small,))
    # the written-out backward, with groups and another window size, against finite differences
    wide = 10 * activations[:1, :8, :2, :2].clone().requires_grad_()
    assert torch.autograd.gradcheck(LRN(size=3, alpha=0.01, beta=0.6, k=1.0, groups=2), (wide,))


def test_lrn_channels_last_and_low_precision():
    torch.manual_seed(0)
    x = 10 * torch.randn(2, 16, 5, 5)
    lrn = LRN.convention("cuda-convnet", groups=2)
    expected = lrn(x)
    torch.testing.assert_close(lrn(x.contiguous(memory_format=torch.channels_last)), expected)
    for dtype in (torch.float16, torch.bfloat16):
        low = x.to(dtype).requires_grad_()
        out = lrn(low)
        assert out.dtype == dtype
        torch.testing.assert_close(out.float(), expected, rtol=2e-2, atol=2e-2)
        # computed in fp32 and rounded once: exactly the fp32 result on the same inputs, rounded
        same = low.detach().float().requires_grad_()
        reference = lrn(same)
        assert torch.equal(out, reference.to(dtype))
        grad = torch.randn_like(reference)
        out.backward(grad.to(dtype))
        reference.backward(grad.to(dtype).float())
        assert low.grad.dtype == dtype and torch.equal(low.grad, same.grad.to(dtype))


def test_lrn_stays_in_fp32_under_autocast():
    torch.manual_seed(0)
    x = (10 * torch.randn(2, 16, 5, 5)).bfloat16()
    lrn = LRN.convention("cuda-convnet", groups=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as in training: autocast must not lower the window sum
        out = lrn(x)
    assert torch.equal(out, lrn(x.float()).bfloat16())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_lrn_and_towers_on_cuda():
    torch.manual_seed(0)
    x = 10 * torch.randn(2, 16, 5, 5)
    lrn = LRN.convention("cuda-convnet", groups=2)
    torch.testing.assert_close(lrn(x.cuda()).cpu(), lrn(x))
    model = AlexNet(input_size=227, fc_size=64, num_classes=10).eval()
    towers = towers_from_grouped(model, devices=("cuda", "cpu"))
    images = torch.randn(2, 3, 227, 227)
    with torch.no_grad(), exact_fp32():  # TF32 would be ~1e-3 off
        out = towers(images)
        assert out.device.type == "cuda"
        torch.testing.assert_close(out.cpu(), model(images), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- initialization (section 5)


def test_paper_init():
    torch.manual_seed(0)
    model = AlexNet()
    assert paper_init_(model) is model
    layers = {**model.features._modules, **model.classifier._modules}
    for name in ("fc6", "fc7", "fc8"):  # millions of weights: tight
        assert layers[name].weight.std().item() == pytest.approx(0.01, rel=0.01)
        assert abs(layers[name].weight.mean().item()) < 1e-4
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5"):
        assert layers[name].weight.std().item() == pytest.approx(0.01, rel=0.03)
    for name in ("conv2", "conv4", "conv5", "fc6", "fc7"):
        assert torch.equal(layers[name].bias, torch.ones_like(layers[name].bias))
    for name in ("conv1", "conv3", "fc8"):
        assert torch.equal(layers[name].bias, torch.zeros_like(layers[name].bias))


def test_caffe_style_init_fix():
    torch.manual_seed(0)
    model = paper_init_(AlexNet(), fc_weight_std=0.005, bias=0.1)
    fc = model.classifier
    assert fc.fc6.weight.std().item() == pytest.approx(0.005, rel=0.01)
    assert fc.fc7.weight.std().item() == pytest.approx(0.005, rel=0.01)
    assert fc.fc8.weight.std().item() == pytest.approx(0.01, rel=0.01)
    assert torch.all(fc.fc6.bias == 0.1) and torch.all(model.features.conv2.bias == 0.1)
    assert torch.all(model.features.conv3.bias == 0)


# ---------------------------------------------------------------- two towers (section 3.2)


def test_towers_compute_the_grouped_network():
    torch.manual_seed(0)
    model = AlexNet(input_size=227).eval()
    towers = towers_from_grouped(model)
    assert not towers.training
    assert count_parameters(towers) == count_parameters(model)
    images = torch.randn(2, 3, 227, 227)
    with torch.no_grad():
        expected = model(images)
        out = towers(images)
    assert expected.std() > 1e-3 and (expected[0] - expected[1]).abs().max() > 1e-4  # not degenerate
    assert_close_in_norm(out, expected, terms=9216)  # fc6 sums 9,216 products, the longest sum


def test_towers_gradients_match_the_grouped_network():
    torch.manual_seed(0)
    model = paper_init_(AlexNet(fc_size=64, num_classes=10, dropout=0.0))
    towers = towers_from_grouped(model)
    images, labels = torch.randn(2, 3, 224, 224), torch.tensor([3, 7])
    nn.functional.cross_entropy(model(images), labels).backward()
    nn.functional.cross_entropy(towers(images), labels).backward()
    layers = {**model.features._modules, **model.classifier._modules}
    stages = {"conv1": "conv1_2", "conv2": "conv1_2", "conv3": "conv3_5", "conv5": "conv3_5", "fc6": "fc6"}
    for name, stage in stages.items():
        tower_grad = torch.cat([t[stage].get_submodule(name).weight.grad for t in towers.towers])
        # a weight's gradient sums over the batch and the output positions: conv1's 2 x 55 x 55
        assert_close_in_norm(tower_grad, layers[name].weight.grad, terms=2 * 55 * 55)
    assert_close_in_norm(towers.fc8.weight.grad, layers["fc8"].weight.grad, terms=9216)


def test_towers_see_their_own_kernels_except_at_conv3_and_fc():
    towers = TwoTowerAlexNet(fc_size=64, num_classes=10)
    tower = towers.towers[0]
    assert tower["conv1_2"].conv1.out_channels == 48
    assert tower["conv1_2"].conv2.in_channels == 48  # own tower only
    assert tower["conv3_5"].conv3.in_channels == 256  # both towers
    assert tower["conv3_5"].conv4.in_channels == 192 and tower["conv3_5"].conv5.out_channels == 128
    assert tower["fc6"].fc6.in_features == 2 * 128 * 6 * 6 and tower["fc6"].fc6.out_features == 32
    assert tower["fc7"].fc7.in_features == 64
    assert tower["conv1_2"].lrn1.groups == 1  # the tower's 48 channels are the whole window range


def test_converters_round_trip(alexnet):
    back = grouped_from_towers(towers_from_grouped(alexnet))
    original, restored = alexnet.state_dict(), back.state_dict()
    assert list(original) == list(restored)
    assert all(torch.equal(original[key], restored[key]) for key in original)


def test_towers_need_a_grouped_network():
    with pytest.raises(ValueError, match="groups=2"):
        towers_from_grouped(AlexNet(groups=1, fc_size=16))


# ---------------------------------------------------------------- layer table (C6)


def test_layer_table(alexnet):
    table = layer_table(alexnet)
    assert not alexnet.training  # mode restored
    assert table.params.sum() == count_parameters(alexnet)
    conv1 = table.set_index("layer").loc["conv1"]
    assert conv1.output_shape == "96x55x55" and conv1.neurons == 290_400
    assert conv1.mult_adds == 55 * 55 * 96 * 363 == 105_415_200
    assert table.set_index("layer").loc["pool5"].output_shape == "256x6x6"
    weighted = table[table.type.isin(["Conv2d", "Linear"])]
    assert list(weighted.layer) == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    # Figure 2's counts, but for conv1, where Figure 2 has 253,440 instead of 55 x 55 x 96.
    assert list(weighted.neurons) == [290_400] + FIGURE2_NEURONS[1:]
    assert weighted.neurons.sum() == 659_272  # "650,000 neurons"
    assert weighted.set_index("layer").mult_adds["fc6"] == 9216 * 4096


def test_layer_table_for_227_and_training_mode():
    model = AlexNet(input_size=227, fc_size=16, num_classes=10)  # left in training mode
    table = layer_table(model)
    assert model.training
    assert table.set_index("layer").loc["conv1"].neurons == 290_400
    assert table.set_index("layer").loc["conv2"].mult_adds == 27 * 27 * 256 * 48 * 25


def test_fused_lrn_is_the_eager_math_to_rounding():

    torch.manual_seed(0)
    x = (10 * torch.randn(4, 16, 6, 6)).contiguous(memory_format=torch.channels_last)
    lrn = LRN.convention("cuda-convnet", groups=2)
    grad = torch.randn_like(x)
    results = {}
    for fused, way in ((True, contextlib.nullcontext), (False, lrn_module.unfused_lrn)):
        for dtype in (torch.float32, torch.bfloat16):
            inp = x.to(dtype, copy=True).requires_grad_()
            with way(), torch.autocast("cpu", dtype=torch.bfloat16):
                out = lrn(inp)
                out.backward(grad.to(dtype))
            results[fused, dtype] = out.detach(), inp.grad
    assert lrn_module._fused_forward.compiled is not None and lrn_module._fused_forward.enabled  # the fused path ran
    # The compiled kernels evaluate pow with other vector code than eager's: a few fp32 roundings apart, which
    # the single rounding of the output to bf16 turns into at most one bf16 step of the largest element
    for dtype in (torch.float32, torch.bfloat16):
        for fused, eager in zip(results[True, dtype], results[False, dtype]):
            assert fused is not None and fused.dtype == dtype
            if dtype == torch.float32:
                assert_close_in_norm(fused, eager, terms=5)  # window sums of 5 products
            else:
                assert (fused.float() - eager.float()).abs().max() <= torch.finfo(dtype).eps * eager.float().abs().max()


def test_lrn_falls_back_to_eager_when_compiling_fails(monkeypatch):

    def broken(fn, **kwargs):
        raise RuntimeError("no C++ compiler")

    stage = lrn_module._Fused(lrn_module._lrn_forward)
    monkeypatch.setattr(lrn_module, "_fused_forward", stage)
    monkeypatch.setattr(torch, "compile", broken)
    x = 10 * torch.randn(2, 8, 3, 3)
    with pytest.warns(UserWarning, match="LRN runs unfused: torch.compile failed .*no C\\+\\+ compiler"):
        out = LRN.convention("paper")(x)
    assert not stage.enabled
    torch.testing.assert_close(out, naive_lrn(x.double(), 5, 1e-4, 0.75, 2.0).float())


def test_out_of_memory_in_the_fused_lrn_is_raised_and_keeps_it_fused(monkeypatch):

    def out_of_memory(*args):
        try:
            raise torch.OutOfMemoryError("CUDA out of memory")
        except torch.OutOfMemoryError as oom:
            raise RuntimeError("dynamo wrapped it") from oom

    stage = lrn_module._Fused(lrn_module._lrn_forward)
    monkeypatch.setattr(lrn_module, "_fused_forward", stage)
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: out_of_memory)
    with pytest.raises(RuntimeError, match="dynamo wrapped it"):
        LRN.convention("paper")(torch.randn(2, 8, 3, 3))
    assert stage.enabled  # a later, smaller batch still runs fused


def test_fused_lrn_writes_inside_its_buffers_for_either_memory_format():
    """Inductor's C++ kernels once ran their last vector store past the buffer (see lrn._cpu_simd_width):
    glibc aborts the process, or the outputs are NaN. In a child process, so an abort fails only this test."""
    code = """if True:
        import torch
        from alexnet_book import lrn as M
        for shape in [(2, 8, 3, 3), (2, 96, 55, 55), (3, 7, 2, 2)]:
            for layout in (torch.contiguous_format, torch.channels_last):
                x = torch.randn(*shape).relu().contiguous(memory_format=layout)
                band = M._band(shape[1], 5, 1, x.device, torch.float32) * 1e-4
                fused, eager = M._fused_forward(x, band, 2.0, 0.75)[0], M._lrn_forward(x, band, 2.0, 0.75)[0]
                assert torch.isfinite(fused).all() and (fused - eager).abs().max() < 1e-5 * eager.abs().max(), shape
        assert M._fused_forward.enabled
        print("ok")
    """
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.split()[-1:] == ["ok"], done.stderr[-2000:]


def test_fused_lrn_compiles_past_dynamos_default_of_eight_shapes(recwarn):

    lrn = LRN.convention("cuda-convnet")
    for batch in range(2, 12):  # ten shapes; dynamo alone would fall back to eager after 8
        x = torch.rand(batch, 8, 3, 3)
        torch.testing.assert_close(lrn(x), naive_lrn(x.double(), 5, 1e-4 / 5, 0.75, 2.0).float())
    stage = lrn_module._fused_forward
    assert stage.enabled and len(torch._dynamo.eval_frame._debug_get_cache_entry_list(stage.fn.__code__)) >= 10
    assert not [w for w in recwarn if "unfused" in str(w.message)]
