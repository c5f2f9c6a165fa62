"""The CUDA-only paths of training, run on the CPU where torch allows it.

channels_last is forced on (`gpu.force_cuda_layouts`), and the CUDA-graph step runs against a CPU
stand-in of the graph calls that keeps their meaning: a capture records without changing any
state, a replay runs the step. What the CPU cannot show (real graphs, cuda:N, memory, determinism
of cuDNN) is checked by benchmarks/gpu_check.py on a GPU.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

from lthkit.platform import device as gpu
from lthkit.train import training
from lthkit.config.training import DataSection, TrainSection
from lthkit.data.load import load_data
from lthkit.nets.models import build_model
from lthkit.nets.pruning import full_mask, random_prune
from lthkit.train.training import Checkpoint, Member, train, train_group

# torch 2.14.1 on the CPU: the channels_last backward of ResNet-20 at width 2 or 4 crashes the
# process (segmentation fault, "double free or corruption"); width 8 runs (measured here).
WIDTH = 8
DATA = DataSection(dataset="synthetic_cifar10", train_size=64, test_size=32)


@pytest.fixture(scope="module")
def data():
    return load_data(DATA)


def _cfg(optimizer: str = "sgd", epochs: int = 2) -> TrainSection:
    return TrainSection(epochs=epochs, batch_size=32, lr=0.05, momentum=0.9, weight_decay=5e-3,
                        milestones=[], eval_batch_size=32, optimizer=optimizer)


def _nets(k: int, start_seed: int = 0) -> list[Member]:
    """K masked networks; `start_seed` moves their start weights (not masks or data order)."""
    models = [build_model("resnet20", WIDTH, "synthetic_cifar10", seed=start_seed + i)
              for i in range(k)]
    return [Member(m, tag=f"net{i}", seed=10 + i, start_iteration=0,
                   mask=random_prune(full_mask(m), fraction=0.3,
                                     generator=torch.Generator().manual_seed(i)))
            for i, m in enumerate(models)]


class _LayoutWatch:
    """Records every optimizer the kit makes and, at each epoch's end, any state tensor whose
    strides differ from its parameter's."""

    def __init__(self, monkeypatch):
        self.optimizers: list[torch.optim.Optimizer] = []
        self.mismatches: list[str] = []
        real = training.make_optimizer

        def recording(model, cfg, device):
            opt = real(model, cfg, device)
            self.optimizers.append(opt)
            return opt

        monkeypatch.setattr(training, "make_optimizer", recording)

    def check(self, *_args) -> None:
        opt = self.optimizers[-1]
        for group in opt.param_groups:
            for p in group["params"]:
                for key, v in opt.state.get(p, {}).items():
                    if isinstance(v, torch.Tensor) and v.shape == p.shape and v.stride() != p.stride():
                        self.mismatches.append(f"{key} {tuple(v.stride())} vs {tuple(p.stride())}")
        for group in opt.param_groups:
            if any(p.dim() == 4 for p in group["params"]):
                assert any(p.is_contiguous(memory_format=torch.channels_last) and not
                           p.is_contiguous() for p in group["params"] if p.dim() == 4), \
                    "channels_last was not taken: the test would prove nothing"


def _weights(model) -> dict[str, torch.Tensor]:
    return {n: t.detach().clone() for n, t in model.state_dict().items()}


# A resumed run is given start weights of other seeds: one that read its resume file ends where the
# straight run ends, one that ignored it (and trained from scratch) ends elsewhere (issue 38 item 1)
OTHER_START = 50


def _lone_resume(data, tmp_path, monkeypatch, optimizer: str) -> None:
    cfg = _cfg(optimizer)
    with gpu.force_cuda_layouts():
        watch = _LayoutWatch(monkeypatch)
        straight, resumed = _nets(1)[0], _nets(1)[0]
        train(straight.model, data, cfg, seed=1, tag="t", mask=straight.mask, progress=False)
        ckpt = Checkpoint(tmp_path / "resume.pt")
        first = train(resumed.model, data, _cfg(optimizer, epochs=1), seed=1, tag="t",
                      mask=resumed.mask, checkpoint=ckpt, progress=False)
        # a new process: the model is built again (here from other start weights), then resumes
        fresh = _nets(1, start_seed=OTHER_START)[0].model
        history = train(fresh, data, cfg, seed=1, tag="t", mask=resumed.mask, checkpoint=ckpt,
                        on_epoch=watch.check, progress=False)
    assert watch.mismatches == []
    assert history[0] == first[0], "epoch 1 was trained again, not read back"
    for name, t in _weights(straight.model).items():
        assert torch.equal(t, fresh.state_dict()[name]), name


def _group_resume(data, tmp_path, monkeypatch, optimizer: str) -> None:
    cfg = _cfg(optimizer)
    with gpu.force_cuda_layouts():
        watch = _LayoutWatch(monkeypatch)
        straight = _nets(2)
        train_group(straight, data, cfg, progress=False)
        first = _nets(2)
        for i, m in enumerate(first):
            m.checkpoint = Checkpoint(tmp_path / f"m{i}.pt")
        done = train_group(first, data, _cfg(optimizer, epochs=1), progress=False)
        again = _nets(2, start_seed=OTHER_START)
        for i, m in enumerate(again):
            m.checkpoint, m.on_epoch = Checkpoint(tmp_path / f"m{i}.pt"), watch.check
        resumed = train_group(again, data, cfg, progress=False)
    assert watch.mismatches == []
    assert [h[0] for h in resumed] == [h[0] for h in done], "epoch 1 was trained again"
    for a, b in zip(straight, again):
        for name, t in _weights(a.model).items():
            assert torch.equal(t, b.model.state_dict()[name]), name


def _member_resume(data, tmp_path, monkeypatch, resume_as: str) -> None:
    with gpu.force_cuda_layouts():
        watch = _LayoutWatch(monkeypatch)
        first = _nets(3)
        for i, m in enumerate(first):
            m.checkpoint = Checkpoint(tmp_path / f"m{i}.pt")
        done = train_group(first[:2], data, _cfg(epochs=1), progress=False)
        done.append(train(first[2].model, data, _cfg(epochs=1), seed=first[2].seed,
                          tag=first[2].tag, mask=first[2].mask, checkpoint=first[2].checkpoint,
                          progress=False))
        again = _nets(3, start_seed=OTHER_START)
        for i, m in enumerate(again):
            m.checkpoint, m.on_epoch = Checkpoint(tmp_path / f"m{i}.pt"), watch.check
        if resume_as == "alone":
            m = again[0]
            histories = [train(m.model, data, _cfg(), seed=m.seed, tag=m.tag, mask=m.mask,
                               checkpoint=m.checkpoint, on_epoch=m.on_epoch, progress=False)]
        else:
            histories = train_group(again, data, _cfg(), progress=False)
    assert all([h["epoch"] for h in hist] == [1, 2] for hist in histories)
    assert [h[0] for h in histories] == [h[0] for h in done[:len(histories)]], \
        "epoch 1 was trained again, not read back"
    assert watch.optimizers and watch.mismatches == []


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_lone_resume_keeps_the_parameters_layout_and_equals_the_straight_run(
        data, tmp_path, monkeypatch, optimizer):
    _lone_resume(data, tmp_path, monkeypatch, optimizer)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_group_resumes_from_its_own_files_in_the_parameters_layout(data, tmp_path, monkeypatch,
                                                                     optimizer):
    _group_resume(data, tmp_path, monkeypatch, optimizer)


@pytest.mark.parametrize("resume_as", ["alone", "group_of_3"])
def test_a_group_members_file_resumes_alone_or_in_another_group_size(
        data, tmp_path, monkeypatch, resume_as):
    """A restart may probe another K: a member's file (written contiguous by a group) is loaded
    into a lone run or a group of another size, whose parameters are channels_last."""
    _member_resume(data, tmp_path, monkeypatch, resume_as)


@pytest.mark.parametrize("scenario, arg", [(_lone_resume, "sgd"), (_group_resume, "sgd"),
                                           (_member_resume, "alone"),
                                           (_member_resume, "group_of_3")],
                         ids=["lone", "group", "member_alone", "member_in_a_group_of_3"])
def test_the_resume_tests_fail_when_resuming_is_off(data, tmp_path, monkeypatch, scenario, arg):
    """With the training checkpoint's load patched to return nothing (a run that ignores its
    resume file and starts over), each resume test above must fail (issue 38 item 1)."""
    monkeypatch.setattr(Checkpoint, "load", lambda self: None)
    with pytest.raises(AssertionError):
        scenario(data, tmp_path, monkeypatch, arg)


def test_masks_take_their_parameters_layout():
    model = build_model("resnet20", WIDTH, "synthetic_cifar10", seed=0)
    model.to(memory_format=torch.channels_last)
    keeper = training._MaskKeeper(model, full_mask(model))
    for p, m in zip(keeper.params, keeper.masks):
        assert m.stride() == p.stride() and m.dtype == p.dtype


def test_states_like_params_leaves_matching_states_alone():
    p = torch.nn.Parameter(torch.randn(4, 3, 2, 2).contiguous(memory_format=torch.channels_last))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    buf = torch.randn(4, 3, 2, 2)
    opt.state[p]["momentum_buffer"] = buf
    training.states_like_params(opt)
    moved = opt.state[p]["momentum_buffer"]
    assert moved.stride() == p.stride() and torch.equal(moved, buf)
    training.states_like_params(opt)
    assert opt.state[p]["momentum_buffer"] is moved


# --- the CUDA-graph step, against a CPU stand-in of the graph calls ---------------------------------

class _CpuGraphs:
    """training.CudaGraphs with the meaning of the CUDA calls, on the CPU: a capture records the
    step and changes no state (what it ran is put back), a replay runs it and writes its outputs
    into the captured ones. `broken`: replays do nothing, as an empty capture. `runs`: the capture
    runs the step instead of recording it and replays do nothing, as a capture for cuda:1 on
    cuda:0's capture stream does. Counts what was called inside `context()` (the device's) and
    outside it."""

    def __init__(self, device, broken: bool = False, runs: bool = False):
        self.device, self.broken, self.runs = device, broken or runs, runs
        self.depth = 0
        self.calls: list[tuple[str, bool]] = []

    def context(self):
        graphs = self

        class _Inside:
            def __enter__(self):
                graphs.depth += 1

            def __exit__(self, *exc):
                graphs.depth -= 1

        return _Inside()

    def synchronize(self):
        self.calls.append(("synchronize", self.depth > 0))

    def side_stream(self):
        self.calls.append(("eager", self.depth > 0))
        return contextlib.nullcontext()

    def capture(self, fn, state):
        self.calls.append(("capture", self.depth > 0))
        saved = [t.detach().clone() for t in state]
        out = fn()
        if not self.runs:
            with torch.no_grad():
                for t, s in zip(state, saved):
                    t.copy_(s)
        return (fn, out), out

    def replay(self, graph):
        self.calls.append(("replay", self.depth > 0))
        if self.broken:
            return
        fn, out = graph
        new = fn()
        with torch.no_grad():
            for o, n in zip(out, new):
                o.copy_(n)


def _stand_in(monkeypatch, broken: bool = False, runs: bool = False) -> list[_CpuGraphs]:
    """training.graph_backend gives stand-ins (on the CPU too); the list of those made."""
    made: list[_CpuGraphs] = []

    def backend(device):
        made.append(_CpuGraphs(device, broken, runs))
        return made[-1]

    monkeypatch.setattr(training, "graph_backend", backend)
    return made


def _three_epochs() -> TrainSection:
    return TrainSection(epochs=3, batch_size=16, lr=0.05, momentum=0.9, weight_decay=5e-3,
                        milestones=[2], eval_batch_size=32)  # 4 steps an epoch, 2 lrs


@pytest.mark.parametrize("broken", [False, True])
def test_the_graph_step_trains_as_the_eager_step(data, monkeypatch, capsys, broken):
    """Warm-up, one capture per lr, replays: the weights of eager training, bit for bit. A capture
    whose replay changes no weight is found at its first replay, said in one line, and training
    goes on eagerly (never frozen)."""
    cfg = _three_epochs()
    eager = _nets(1)[0]
    train(eager.model, data, cfg, seed=1, tag="t", mask=eager.mask, progress=False)
    made = _stand_in(monkeypatch, broken)
    graphed = _nets(1)[0]
    start = _weights(graphed.model)
    history = train(graphed.model, data, cfg, seed=1, tag="t", mask=graphed.mask, progress=False)
    graphs = made[0]
    kinds = [kind for kind, _ in graphs.calls]
    assert all(inside for _, inside in graphs.calls), "a graph call outside the device's context"
    printed = capsys.readouterr().out
    if broken:
        assert kinds.count("capture") == 1 and kinds.count("replay") == 1
        assert printed.count("changed no weight") == 1
    else:
        assert kinds.count("capture") == 2  # one per lr: 0.05, then 0.005 from epoch 3
        assert kinds.count("replay") == 12 - training._GraphedStep.WARMUP
        assert "changed no weight" not in printed
    assert [h["epoch"] for h in history] == [1, 2, 3]
    for name, t in _weights(eager.model).items():
        assert torch.equal(t, graphed.model.state_dict()[name]), name
    assert any(not torch.equal(t, graphed.model.state_dict()[n]) for n, t in start.items())


def test_a_capture_that_ran_the_step_keeps_that_step_once(data, monkeypatch, capsys):
    """A capture on the wrong device's stream runs the step instead of recording it (issue 35
    item 5): the step it ran counts once, not again eagerly after an empty replay."""
    cfg = _three_epochs()
    eager = _nets(1)[0]
    train(eager.model, data, cfg, seed=1, tag="t", mask=eager.mask, progress=False)
    made = _stand_in(monkeypatch, runs=True)
    graphed = _nets(1)[0]
    train(graphed.model, data, cfg, seed=1, tag="t", mask=graphed.mask, progress=False)
    kinds = [kind for kind, _ in made[0].calls]
    assert kinds.count("capture") == 1 and kinds.count("replay") == 0
    assert capsys.readouterr().out.count("ran the training step instead of recording it") == 1
    for name, t in _weights(eager.model).items():
        assert torch.equal(t, graphed.model.state_dict()[name]), name


class _FakeStream:
    def __init__(self, device=None):
        self.device = torch.device(device)


def test_each_device_captures_on_a_stream_of_its_own(monkeypatch):
    """torch.cuda.graph's default capture stream is made once, on the device current at the first
    capture; the kit gives every device its own (issue 35 item 5)."""
    captured = []

    class _Graph:
        def __init__(self, graph, stream=None, **kwargs):
            captured.append(stream)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(training, "_CAPTURE_STREAMS", {})
    monkeypatch.setattr(torch.cuda, "Stream", _FakeStream)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", lambda: object())
    monkeypatch.setattr(torch.cuda, "graph", _Graph)
    for index in (0, 1, 0, 1):
        training.CudaGraphs(torch.device("cuda", index)).capture(lambda: (), [])
    assert [s.device for s in captured] == [torch.device(f"cuda:{i}") for i in (0, 1, 0, 1)]
    assert captured[0] is captured[2] and captured[1] is captured[3]  # one stream per device


def test_the_fused_graph_step_trains_as_the_fused_eager_step(data, monkeypatch):
    cfg = _three_epochs()
    eager = _nets(2)
    train_group(eager, data, cfg, progress=False)
    made = _stand_in(monkeypatch)
    graphed = _nets(2)
    train_group(graphed, data, cfg, progress=False)
    assert [k for k, _ in made[0].calls].count("capture") == 2
    for a, b in zip(eager, graphed):
        for name, t in _weights(a.model).items():
            assert torch.equal(t, b.model.state_dict()[name]), name


def test_cuda_calls_are_made_on_the_runs_device():
    ctx = gpu.on_device(torch.device("cuda:1"))
    assert isinstance(ctx, torch.cuda.device) and ctx.idx == 1
    assert isinstance(gpu.on_device("cpu"), contextlib.nullcontext)
    assert training.graph_backend(torch.device("cpu")) is None
    assert training.graph_backend(torch.device("cuda:1")).device == torch.device("cuda:1")


# --- memory: allocation failures, the task's share of a card ------------------------------------

@pytest.mark.parametrize("message, failed", [
    ("CUDA out of memory. Tried to allocate 2.00 GiB", True),
    ("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`", True),
    ("cuDNN error: CUDNN_STATUS_ALLOC_FAILED", True),
    ("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported", True),
    ("Expected all tensors to be on the same device", False),
    # real errors, never "failed to allocate" (issue 35 item 7): an unsupported grouped NHWC bf16
    # convolution, a broken cuDNN, a cuBLAS that could not start
    ("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED. This error may appear if you passed in a "
     "non-contiguous input.", False),
    ("cuDNN error: CUDNN_STATUS_INTERNAL_ERROR", False),
    ("CUDA error: CUBLAS_STATUS_NOT_INITIALIZED when calling `cublasCreate(handle)`", False),
])
def test_allocation_failures_are_known_in_every_librarys_words(message, failed):
    assert gpu.is_allocation_failure(RuntimeError(message)) is failed
    assert gpu.is_allocation_failure(torch.cuda.OutOfMemoryError("x"))
    assert not gpu.is_allocation_failure(ValueError("out of memory"))


def test_a_task_holding_part_of_a_card_sizes_itself_to_its_share(monkeypatch):
    gib = 2 ** 30
    # 70 GiB free to the driver; this process holds 2 GiB reserved, all of it allocated
    monkeypatch.setattr(gpu, "cuda_memory", lambda device: (70 * gib, 80 * gib, 2 * gib, 2 * gib))
    card = torch.device("cuda:0")
    gpu.set_gpu_share(None)
    monkeypatch.delenv(gpu.GPU_SHARE_ENV, raising=False)
    assert gpu.memory_budget(card) == 70 * gib  # the whole card: what is free
    monkeypatch.setenv(gpu.GPU_SHARE_ENV, "0.25")
    assert gpu.memory_budget(card) == 18 * gib  # a quarter of 80, less the 2 it holds
    gpu.set_gpu_share(0.5)
    try:
        assert gpu.memory_budget(card) == 38 * gib
    finally:
        gpu.set_gpu_share(None)
    assert gpu.memory_budget(torch.device("cpu")) is None


def test_the_memory_budget_counts_what_pytorchs_cache_holds_free(monkeypatch):
    """After training in the same kernel, PyTorch's cache holds blocks free that the driver counts
    as taken (issue 35 item 6): they are this process's to use."""
    gib = 2 ** 30
    # 10 GiB free to the driver; this process reserved 60 GiB and uses 4 of them
    monkeypatch.setattr(gpu, "cuda_memory", lambda device: (10 * gib, 80 * gib, 60 * gib, 4 * gib))
    card = torch.device("cuda:0")
    gpu.set_gpu_share(None)
    monkeypatch.delenv(gpu.GPU_SHARE_ENV, raising=False)
    assert gpu.memory_budget(card) == 66 * gib  # 10 free + 56 cached
    gpu.set_gpu_share(0.5)
    try:
        assert gpu.memory_budget(card) == 36 * gib  # half of 80 less the 4 in use
    finally:
        gpu.set_gpu_share(None)


def test_ray_tasks_on_part_of_a_gpu_are_told_their_share():
    from lthkit.platform.executor import task_options

    shared = task_options(0.25, 1.0, 1)
    assert shared["runtime_env"] == {"env_vars": {gpu.GPU_SHARE_ENV: "0.25"}}
    assert "runtime_env" not in task_options(1.0, 1.0, 1)
    assert "runtime_env" not in task_options(0.0, 1.0, 1)


def test_a_group_size_probe_that_fails_to_allocate_stops_at_the_last_k_that_worked(monkeypatch):
    def steps(make_model, shape, cfg, device, k, min_seconds):
        if k == 4:
            raise RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate")
        return {"images_per_s": 100.0 * k, "step_ms": 10.0, "peak_mib": None}

    monkeypatch.setattr(training, "time_steps", steps)
    probe = training.probe_group_sizes(lambda: None, (3, 32, 32), _cfg(), torch.device("cpu"),
                                       max_k=16)
    assert [r["group_size"] for r in probe.rows] == [1, 2, 4]
    assert "failed to allocate" in probe.rows[-1]["note"] and "K stops at 2" in probe.rows[-1]["note"]
    assert probe.best([(8, 100)]) == 2
    assert "failed to allocate" in probe.table()

    def other_error(*args, **kwargs):
        raise RuntimeError("Expected all tensors to be on the same device")

    monkeypatch.setattr(training, "time_steps", other_error)
    with pytest.raises(RuntimeError, match="same device"):
        training.probe_group_sizes(lambda: None, (3, 32, 32), _cfg(), torch.device("cpu"), 4)


def _layout_timer(monkeypatch, rates: dict[tuple[int, bool], float]) -> list[tuple[int, bool]]:
    """training.time_steps as a stand-in timer: images/s from `rates` by (K, channels_last), the
    layout taken as on CUDA; the list of what was timed."""
    timed: list[tuple[int, bool]] = []

    def steps(make_model, shape, cfg, device, k, min_seconds, channels_last=None):
        layout = cfg.channels_last if channels_last is None else channels_last
        timed.append((k, layout))
        rate = rates[(k, layout)]
        return {"images_per_s": rate, "step_ms": 1e3 * 32 * k / rate, "peak_mib": None,
                "channels_last": layout}

    monkeypatch.setattr(training, "time_steps", steps)
    return timed


def test_the_group_probe_times_both_layouts_and_keeps_the_faster(monkeypatch):
    """Grouped NHWC convolutions of 16-64 channels a group may be no faster than K plain ones
    (issue 35 item 9): for K > 1 the probe times the fused step contiguous too."""
    timed = _layout_timer(monkeypatch, {(1, True): 100.0, (2, True): 150.0, (2, False): 240.0,
                                        (4, True): 400.0, (4, False): 300.0, (8, True): 401.0,
                                        (8, False): 402.0})
    probe = training.probe_group_sizes(lambda: None, (3, 32, 32), _cfg(), torch.device("cpu"),
                                       max_k=8)
    assert timed == [(1, True), (2, True), (2, False), (4, True), (4, False), (8, True),
                     (8, False)]
    assert [r["images_per_s"] for r in probe.rows] == [100.0, 240.0, 400.0, 401.0]
    assert [probe.channels_last(k) for k in (1, 2, 4, 8)] == [None, False, True, True]
    assert "contiguous (240 images/s against 150 channels_last)" in probe.table()
    assert probe.best([(2, 100)]) == 2  # contiguous K = 2: 2.4x one after another


def test_the_group_probe_times_one_layout_where_channels_last_is_off(monkeypatch):
    timed = _layout_timer(monkeypatch, {(1, False): 100.0, (2, False): 150.0, (4, False): 151.0})
    cfg = _cfg().model_copy(update={"channels_last": False})
    probe = training.probe_group_sizes(lambda: None, (3, 32, 32), cfg, torch.device("cpu"), 4)
    assert timed == [(1, False), (2, False), (4, False)]
    assert probe.channels_last(2) is None


def test_auto_group_size_trains_groups_in_the_layout_the_probe_chose(monkeypatch):
    from types import SimpleNamespace

    from lthkit.config.params import Params
    from lthkit.train import baselines
    from lthkit.train.baselines import ScheduleClass

    rows = [{"group_size": 1, "images_per_s": 100.0, "step_ms": 10.0, "peak_mib": None,
             "note": ""},
            {"group_size": 2, "images_per_s": 400.0, "step_ms": 5.0, "peak_mib": None, "note": "",
             "layout": "contiguous", "layouts": {"channels_last": 150.0, "contiguous": 400.0}}]
    monkeypatch.setattr(baselines, "probe_group_sizes",
                        lambda *args, **kwargs: training.GroupProbe(rows, "stand-in"))
    ctx = SimpleNamespace(params=Params(), new_model=None, device=torch.device("cpu"),
                          data=SimpleNamespace(train_x=torch.zeros(1, 3, 32, 32)))
    classes = [ScheduleClass(_cfg(), 0, 100, [("one_shot", 1), ("lr_rewind", 1)])]
    assert baselines.auto_group_size(ctx, classes) == baselines.GroupChoice(2, False)


def test_a_group_trains_in_the_layout_it_is_given(data, monkeypatch):
    nhwc: list[bool] = []  # whether the fused network's convolutions were channels_last
    real = training.make_optimizer

    def recording(model, cfg, device):
        nhwc.append(any(p.is_contiguous(memory_format=torch.channels_last) and not
                        p.is_contiguous() for p in model.parameters() if p.dim() == 4))
        return real(model, cfg, device)

    monkeypatch.setattr(training, "make_optimizer", recording)
    with gpu.force_cuda_layouts():
        for channels_last in (False, None):
            train_group(_nets(2), data, _cfg(epochs=1), progress=False,
                        channels_last=channels_last)
    assert nhwc == [False, True]  # contiguous as asked; then train.channels_last


def test_the_group_size_probe_measures_evaluation_too(data):
    """The probe's timer runs the K networks' evaluation at train.eval_batch_size beside the
    step, as train_group does at an epoch's end (its peak is the larger of the two on CUDA)."""
    make = lambda: build_model("resnet20", WIDTH, "synthetic_cifar10", seed=0)  # noqa: E731
    row = training.time_steps(make, (3, 32, 32), _cfg(), torch.device("cpu"), 2, 0.0)
    assert row["eval_ms"] > 0 and row["step_ms"] > 0
    assert row["peak_mib"] is None  # the CPU's memory is not probed


def test_a_points_probe_that_fails_to_allocate_keeps_the_last_block_that_worked(monkeypatch):
    from lthkit.nets import probe
    from lthkit.nets.evaluator import PointEvaluator

    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    evaluator = PointEvaluator(build_model("resnet20", 2, "synthetic_cifar10", seed=0), x, y,
                               batch_size=16, points_per_pass="auto", use_vmap=True,
                               verbose=False)
    real = evaluator._evaluate_block

    def failing(points, own):
        if points.shape[0] >= 4:
            raise RuntimeError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return real(points, own)

    monkeypatch.setattr(evaluator, "_evaluate_block", failing)
    monkeypatch.setattr(probe, "_timed", lambda device, fn: (fn(), 1.0)[1])  # P points/s
    p, why = probe.probe_speed(evaluator, 64, "memory: test")
    assert p == 2 and "4 points failed to allocate" in why and "stopped at 2" in why


# --- train.precision (issue 35 item 8) --------------------------------------------------------------

def _tf32_flags() -> tuple[bool, bool]:
    return torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32


@pytest.mark.parametrize("precision", ["fp32", "tf32"])
@pytest.mark.parametrize("fused", [False, True])
def test_the_training_step_runs_with_the_tf32_flags_of_its_precision(data, precision, fused):
    """torch lets cuDNN use TF32 by default, so an 'fp32' step must turn it off; the flags are
    process-wide and readable on the CPU. Evaluation is IEEE fp32 whatever the precision, and the
    flags are as they were afterwards."""
    seen: list[tuple[bool, bool, bool]] = []  # (training mode, cudnn, matmul) at each forward
    nets = _nets(2 if fused else 1)
    for m in nets:
        m.model.register_forward_pre_hook(lambda mod, args: seen.append((mod.training,
                                                                         *_tf32_flags())))
    cfg = _cfg(epochs=1).model_copy(update={"precision": precision})
    before = _tf32_flags()
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = True, False
    try:
        if fused:  # the fused module calls each member's forward inside its own: not hooked
            from lthkit.train import fused as fusion

            real = fusion.FusedNetworks.__init__

            def hooked(self, models):
                real(self, models)
                self.module.register_forward_pre_hook(
                    lambda mod, args: seen.append((mod.training, *_tf32_flags())))
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(fusion.FusedNetworks, "__init__", hooked)
                histories = train_group(nets, data, cfg, progress=False)
        else:
            histories = [train(nets[0].model, data, cfg, seed=1, tag="t", mask=nets[0].mask,
                               progress=False)]
        assert _tf32_flags() == (True, False)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before
    tf32 = precision == "tf32"
    assert {flags for flags in seen if flags[0]} == {(True, tf32, tf32)}
    assert {flags for flags in seen if not flags[0]} == {(False, False, False)}
    assert all(h[-1]["precision"] == "fp32" for h in histories)  # the CPU trains in fp32


def test_the_precision_is_said_with_what_it_gives_on_the_device():
    cfg = _cfg().model_copy(update={"precision": "bf16"})
    assert training.precision_note(cfg, torch.device("cuda:0")) == \
        "train.precision bf16 (bf16 autocast)"
    assert training.precision_note(cfg, torch.device("cpu")).endswith("; on cpu: fp32")


# --- run.deterministic ---------------------------------------------------------------------------

def test_run_deterministic_sets_deterministic_algorithms_and_is_not_part_of_the_training(
        tiny, monkeypatch):
    from lthkit.train.context import open_run

    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", "")  # restored (unset) after the test ...
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")  # ... and unset during it, for the kit to set
    try:
        ctx = open_run(tiny(run={"name": "det", "seed": 0, "deterministic": True}), create=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        import os
        assert os.environ.get("CUBLAS_WORKSPACE_CONFIG") == ":4096:8"
        again = open_run(tiny(run={"name": "det", "seed": 0}))  # the same run folder, reused
        assert again.store.root == ctx.store.root
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        gpu.set_deterministic(False)
