"""Measurement functions (SPEC section 5). No test asserts a speed: performance is benchmarked."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from nasoa_lib import measure, models
from nasoa_lib.errors import StoreCorruptedError, UnknownModelError
from nasoa_lib.profiles import available_profiles, load_profile
from nasoa_lib.staged import freeze_stages


def tiny_net(num_classes: int = 5, image_size: int = 8) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * image_size * image_size, num_classes),
    )


def check_timing(t: measure.StepTiming, steps: int, batch_size: int, image_size: int, kind: str) -> None:
    assert len(t.samples_ms) == steps
    assert all(s > 0 for s in t.samples_ms)
    assert t.min_ms <= t.median_ms <= t.max_ms
    assert 0 <= t.iqr_ms <= t.max_ms - t.min_ms
    assert (t.batch_size, t.image_size, t.kind, t.dtype) == (batch_size, image_size, kind, "float32")
    assert t.device.startswith("cpu")
    assert t.images_per_second == pytest.approx(batch_size * 1000 / t.median_ms)


def test_step_time_is_self_consistent_and_leaves_model_and_threads_alone():
    model = tiny_net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    threads_before = torch.get_num_threads()
    timing = measure.measure_step_time(model, 4, 8, device="cpu", warmup=1, steps=5, threads=1)
    check_timing(timing, 5, 4, 8, "train")
    assert timing.threads == 1 and timing.device == "cpu:1threads"
    assert torch.get_num_threads() == threads_before
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed"
    assert model.training


def test_threads_default_to_the_current_setting():
    timing = measure.measure_step_time(tiny_net(), 2, 8, device="cpu", warmup=0, steps=1)
    assert timing.threads == torch.get_num_threads()
    assert timing.iqr_ms == 0.0


def test_inference_time_on_a_real_baseline():
    model = models.create("mobilenet_v3_small", num_classes=10)
    timing = measure.measure_inference_time(model, 2, 32, device="cpu", warmup=1, steps=3, threads=1)
    check_timing(timing, 3, 2, 32, "inference")
    step = measure.measure_step_time(model, 2, 32, device="cpu", warmup=1, steps=3, threads=1)
    check_timing(step, 3, 2, 32, "train")


def test_time_calls_warms_up_then_times_each_call():
    calls = []
    samples = measure.time_calls(lambda: calls.append(len(calls)), torch.device("cpu"), warmup=2, steps=4)
    assert len(calls) == 6 and len(samples) == 4
    assert all(s >= 0 for s in samples)


def test_step_time_on_a_given_batch_draws_no_random_numbers():
    model = tiny_net()
    x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    seen = []
    model[0].register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    state = torch.get_rng_state()
    timing = measure.measure_step_time(model, 4, 8, device="cpu", warmup=1, steps=2, batch=(x, y))
    assert torch.equal(torch.get_rng_state(), state)
    check_timing(timing, 2, 4, 8, "train")
    assert len(seen) == 3 and all(torch.equal(s, x) for s in seen)  # the copy keeps the hook: our batch, each step
    measure.measure_step_time(model, 4, 8, device="cpu", warmup=0, steps=1)
    assert not torch.equal(torch.get_rng_state(), state)  # the random batch draws


def test_step_time_needs_trainable_parameters_and_valid_sizes():
    model = freeze_stages(models.create("resnet18", 3), 4)
    for p in model.head.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="trainable"):
        measure.measure_step_time(model, 2, 32, device="cpu", warmup=0, steps=1)
    with pytest.raises(ValueError, match="steps"):
        measure.measure_step_time(tiny_net(), 2, 8, device="cpu", steps=0)
    with pytest.raises(ValueError, match="batch_size"):
        measure.measure_inference_time(tiny_net(), 0, 8, device="cpu")


def test_flops_known_value_and_macs_are_half():
    # conv 3->8, 3x3 on 8x8: 8*27*64 = 13824 MACs; linear 512->5: 2560 MACs.
    model = tiny_net(num_classes=5, image_size=8).train()
    assert measure.count_flops(model, 8) == 2 * (13824 + 2560)
    assert measure.count_macs(model, 8) == 13824 + 2560
    assert model.training and all(m.training for m in model.modules())


def test_resnet18_macs_and_params_match_published_figures():
    model = models.create("resnet18", num_classes=1000)
    assert measure.count_params(model) == 11_689_512
    assert abs(measure.count_macs(model, 224) - 1.814e9) < 0.01e9


def test_count_params_trainable_only_follows_freezing():
    model = freeze_stages(models.create("resnet18", 10), 4)
    assert measure.count_params(model, trainable_only=True) == 512 * 10 + 10
    assert measure.count_params(model) == 11_181_642


def test_peak_memory_on_cpu_is_labelled_and_activations_grow_with_batch():
    model = models.create("mobilenet_v3_small", num_classes=10)
    small = measure.measure_peak_memory(model, 2, 32, device="cpu")
    large = measure.measure_peak_memory(model, 8, 32, device="cpu")
    for peak in (small, large):
        assert peak.method in ("cpu_peak_rss_delta", "cpu_rss_delta")
        assert peak.bytes >= 0 and peak.device.startswith("cpu")
        assert peak.saved_activation_bytes > 0
    assert large.saved_activation_bytes > 3 * small.saved_activation_bytes


def fake_timing(ms: float) -> measure.StepTiming:
    return measure.StepTiming(
        median_ms=ms, iqr_ms=0.5, samples_ms=(ms - 1, ms, ms + 1), batch_size=64, image_size=32,
        device="cpu:2threads", threads=2, dtype="float32",
    )


def test_step_time_table_json_round_trip(tmp_path):
    table = measure.StepTimeTable("cpu:2threads", 64, 32, {"resnet18": fake_timing(10.0), "2-_32_2-11-112-1121112": fake_timing(3.0)})
    path = table.save(tmp_path / "sub" / "step_times.json")
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    loaded = measure.StepTimeTable.load(path)
    assert loaded == table
    assert loaded.step_ms("resnet18") == 10.0
    assert loaded.names == ["resnet18", "2-_32_2-11-112-1121112"]
    bigger = loaded.with_entries({"resnet50": fake_timing(20.0)})
    assert len(bigger) == 3 and "resnet50" not in loaded


def test_step_time_table_unknown_name_and_corrupt_file(tmp_path):
    table = measure.StepTimeTable("cpu:2threads", 64, 32, {"resnet18": fake_timing(10.0)})
    with pytest.raises(UnknownModelError, match="resnet18"):
        table.step_ms("resnet50")
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(StoreCorruptedError):
        measure.StepTimeTable.load(path)
    path.write_text("{not json")
    with pytest.raises(StoreCorruptedError):
        measure.StepTimeTable.load(path)


def test_build_step_time_table_from_names_and_factories(tmp_path):
    table = measure.build_step_time_table(
        ["mobilenet_v3_small"], batch_size=2, image_size=32, device="cpu", num_classes=10,
        warmup=0, steps=2, threads=1,
    )
    assert table.names == ["mobilenet_v3_small"] and table.device == "cpu:1threads"
    assert table.step_ms("mobilenet_v3_small") > 0
    table2 = measure.build_step_time_table(
        {"tiny": lambda: tiny_net(10, 32)}, batch_size=2, image_size=32, device="cpu", warmup=0, steps=2,
    )
    assert table2.timing("tiny").batch_size == 2
    assert measure.StepTimeTable.load(table2.save(tmp_path / "t.json")) == table2


@pytest.mark.parametrize("profile", available_profiles())
def test_profiles_have_a_measure_section(profile):
    config = load_profile(profile).section("measure", measure.MeasureConfig)
    assert config.steps >= 1 and config.warmup >= 0 and config.batch_size >= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_timing_and_peak_memory():
    model = models.create("resnet18", num_classes=10)
    timing = measure.measure_step_time(model, 4, 32, device="cuda", warmup=1, steps=3)
    assert timing.device.startswith("cuda") and timing.min_ms <= timing.median_ms <= timing.max_ms
    peak = measure.measure_peak_memory(model, 4, 32, device="cuda")
    assert peak.method == "cuda_max_allocated"
    # weights + gradients + momentum buffers are all resident during the step
    assert peak.bytes > 3 * 4 * measure.count_params(model)


def test_interleaved_timing_gives_every_model_all_rounds_and_leaves_weights_alone():
    nets = {"a": tiny_net(), "b": tiny_net(num_classes=7)}
    before = {k: [p.detach().clone() for p in n.parameters()] for k, n in nets.items()}
    out = measure.measure_interleaved(nets, 4, 8, rounds=3, steps_per_round=2, warmup=1, threads=1)
    assert list(out) == ["a", "b"]
    for timing in out.values():
        assert len(timing.samples_ms) == 6 and timing.kind == "train" and timing.median_ms > 0
    inf = measure.measure_interleaved(nets, 4, 8, kind="inference", rounds=2, steps_per_round=1, warmup=0, threads=1)
    assert all(t.kind == "inference" and len(t.samples_ms) == 2 for t in inf.values())
    for k, n in nets.items():
        assert all(torch.equal(p, q) for p, q in zip(n.parameters(), before[k]))


def test_interleaved_timing_order_alternates(monkeypatch):
    calls = []
    real = measure.time_calls

    def spy(fn, device, warmup, steps):
        if steps:
            calls.append(fn)
        return real(fn, device, warmup, steps)

    monkeypatch.setattr(measure, "time_calls", spy)
    measure.measure_interleaved({"a": tiny_net(), "b": tiny_net()}, 2, 8, rounds=4, steps_per_round=1, warmup=0)
    first = calls[0]
    assert [c is first for c in calls] == [True, False, False, True, True, False, False, True]  # ABBA ABBA


def test_interleaved_timing_rejects_bad_setups():
    from nasoa_lib.errors import InvalidMeasurementSetup

    with pytest.raises(InvalidMeasurementSetup):
        measure.measure_interleaved({"a": tiny_net()}, 2, 8, kind="backward")
    with pytest.raises(InvalidMeasurementSetup):
        measure.measure_interleaved({"a": tiny_net()}, 2, 8, rounds=0)


def test_other_cpu_load_sees_a_busy_neighbour():
    import subprocess
    import sys

    idle = measure.other_cpu_load(0.3)
    busy_child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time
        time.sleep(0.3)
        busy = measure.other_cpu_load(0.5)
    finally:
        busy_child.kill()
        busy_child.wait()
    assert idle >= 0.0 and busy > 0.3  # a spinning process takes most of a core
