import math

import torch

from alexnet_book import bench


def test_matmul_limit_and_lrn_timings_are_positive():
    assert bench.matmul_gflops(torch.device("cpu"), torch.float32, n=64, repeats=1) > 0
    table = bench.lrn_speeds(torch.device("cpu"), shape=(2, 8, 6, 6), repeats=1)
    assert table["lrn"].tolist() == ["alexnet_book.LRN", "alexnet_book.LRN, unfused", "torch.nn.LocalResponseNorm"] * 2
    assert table["dtype"].tolist() == ["float32"] * 3 + ["bfloat16"] * 3
    ours = table[table.lrn.str.startswith("alexnet_book.LRN")]
    assert (ours["forward_ms"] > 0).all() and (ours["forward_backward_ms"] > 0).all()


def test_data_paths_run_on_a_generated_tree(tmp_path):
    root = bench.write_jpeg_tree(tmp_path, classes=2, per_class=12, size=(32, 32))
    speeds = bench.cifar_data_path(root / "train", batch_size=4, batches=6, workers=0)
    assert speeds["images"] == 24 and speeds["speedup"] > 0
    loader = bench.folder_loader(root, workers=0, device=torch.device("cpu"), batch_size=4)
    assert loader["img_per_s"] > 0 and loader["img_per_s_per_worker"] == loader["img_per_s"]


def test_jpeg_decoding_and_cifar_epoch_times_run_on_cpu(tmp_path, monkeypatch):
    root = bench.write_jpeg_tree(tmp_path, classes=2, per_class=3, size=(32, 40))
    assert bench.jpeg_decode_speed(root, torch.device("cpu"), batch_size=4) > 0
    real = bench.cifar_epoch_seconds(torch.device("cpu"), batch_size=4, steps=1, images=8)
    assert len(real) == 4 and all(math.isfinite(s) and s > 0 for s in real.values())
    timed = []
    monkeypatch.setattr(bench, "model_throughput", lambda model, *args, **kw: timed.append(type(model).__name__)
                        or {"img_per_s": 1000.0})
    seconds = bench.cifar_epoch_seconds(torch.device("cpu"))
    assert timed == ["Layers80Sec", "ConvLocal", "CifarAlexNet", "CifarAlexNet"]  # every section net
    assert list(seconds.values()) == [50.0] * 4  # 50,000 images at 1,000 img/s


def test_bf16_where_it_is_emulated_is_timed_on_less_work(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(bench, "bf16_is_fast", lambda device: False)
    assert bench.setting_work(cpu, "bf16", 128, 3) == (32, 1)
    assert bench.setting_work(cpu, "fp32", 128, 3) == (128, 3)
    monkeypatch.setattr(bench, "bf16_is_fast", lambda device: True)
    assert bench.setting_work(cpu, "bf16", 128, 3) == (128, 3)


def test_training_rows_are_printed_as_measured_with_their_work(monkeypatch, capsys):
    monkeypatch.setattr(bench, "matmul_gflops", lambda device, dtype: 100.0)
    monkeypatch.setattr(bench, "setting_speed", lambda net, dtype, *args: (10.0 if dtype == "fp32" else 1.0, None))
    monkeypatch.setattr(bench, "huge_page_allocations", lambda: False)
    monkeypatch.setattr(bench, "amp_dtype", lambda device, setting: None)  # a CPU without native bf16
    monkeypatch.setattr(bench, "bf16_is_fast", lambda device: False)
    table = bench.training_speeds(torch.device("cpu"), 64, 3)
    printed = capsys.readouterr().out
    assert "training here uses fp32" in printed and printed.count("img/s") == len(table) + 1
    assert set(table[table.dtype == "bf16"].batch) == {16} and set(table[table.dtype == "fp32"].steps) == {3}
    assert table[table.compile].dtype.tolist() == ["fp32", "fp32"]  # compile timed in the chosen dtype


def test_model_throughput_trains_on_normalized_noise():
    from alexnet_book.timing import model_throughput

    seen = []
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    model.register_forward_pre_hook(lambda module, args: seen.append(args[0].abs().max().item()))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    model_throughput(model, optimizer, 4, 4, side=8, steps=2)
    assert seen and max(seen) <= 1.0  # pixels in [-1, 1], not 0-255


def test_markdown_summary_names_every_section():
    result = {"run": {"device": "cpu: test"}, "batch_size": 128,
              "training": [{"net": "paper AlexNet", "dtype": "bf16", "channels_last": True, "compile": False,
                            "img_per_s": 30.0, "matmul_gflops": 200.0, "fraction_of_matmul_limit": 0.65, "error": None}],
              "lrn": [{"lrn": "ours", "forward_ms": 1.0, "forward_backward_ms": 3.0}],
              "imagefolder_loader": [{"workers": 1, "img_per_s": 100.0, "img_per_s_per_worker": 100.0}],
              "cifar_data_path": {"book_img_per_s": 50_000.0, "torchvision_pil_img_per_s": 2_000.0, "speedup": 25.0,
                                  "workers": 2, "images": 1}}
    text = bench.to_markdown(result)
    assert "cpu: test" in text and "0.65" in text and "25.0x" in text and "ImageFolder loader" in text
    assert "batch 128" in text
    assert math.isclose(bench.GFLOP_PER_IMAGE, 4.344)
