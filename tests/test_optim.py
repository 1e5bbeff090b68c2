"""Optimizers and schedules against torch: the same model, weights and batches end with the same weights.

A small float64 convolutional network is built in convlab and mirrored in torch
(``convlab.interop.to_torch``). Each side computes its own gradients (convlab:
``CrossEntropyLoss`` forward/backward and ``model.backward``; torch: autograd)
on the same batches, then steps its own optimizer and scheduler; after every
step all weights agree to 1e-10 and the learning rates (and cycled momenta) are
equal. Every optimizer option, parameter groups, every schedule, state-dict
round trips (JSON for the options and the schedule) and state dicts crossing
between convlab and torch are covered, and the refusals of bad arguments.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from convlab import nn, optim
from convlab.optim import lr_scheduler

torch = pytest.importorskip("torch")
from convlab.interop.torch import to_torch  # noqa: E402  (needs torch)

TOLERANCE = dict(rtol=1e-10, atol=1e-10)
FLOAT32_TOLERANCE = dict(rtol=1e-4, atol=1e-5)  # float32 gradients differ in the last bits, steps carry them
BATCH = 4


def _model(seed: int = 0, dtype: type = np.float64) -> nn.Module:
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, rng=rng, dtype=dtype), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(3, 4, 3, rng=rng, dtype=dtype), nn.ReLU(), nn.Flatten(),
        nn.Linear(4 * 2 * 2, 5, rng=rng, dtype=dtype),
    )


def _batch(step: int, dtype: type = np.float64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([7, step])
    return rng.standard_normal((BATCH, 1, 8, 8)).astype(dtype), rng.integers(0, 5, BATCH)


def _convlab_gradients(model, loss_fn, step, drop_grad=None):
    x, y = _batch(step, model[0].weight.dtype)
    loss_fn(model(x), y)
    model.backward(loss_fn.backward())
    if drop_grad is not None and step % 2:
        dict(model.named_parameters())[drop_grad].grad = None  # skipped by step(), as in torch


def _torch_gradients(model, step, drop_grad=None):
    x, y = _batch(step, np.float32 if model[0].weight.dtype == torch.float32 else np.float64)
    torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
    if drop_grad is not None and step % 2:
        dict(model.named_parameters())[drop_grad].grad = None


def _assert_same_weights(ours, theirs, where, tolerance=TOLERANCE):
    theirs_state = theirs.state_dict()
    for key, value in ours.state_dict().items():
        assert value.dtype == theirs_state[key].numpy().dtype
        np.testing.assert_allclose(value, theirs_state[key].numpy(), err_msg=f"{key} {where}", **tolerance)


def _groups(params, grouping):
    """The same grouping of a parameter list on both sides: one list, or torch's list of dicts."""
    params = list(params)
    if grouping is None:
        return params
    return [{"params": params[:2], **grouping[0]}, {"params": params[2:4], **grouping[1]}, {"params": params[4:]}]


def _check_options(ours, theirs, where):
    for i, (a, b) in enumerate(zip(ours.param_groups, theirs.param_groups, strict=True)):
        assert a["lr"] == b["lr"], f"lr of group {i} {where}"
        for key in ("momentum", "betas"):
            if key in a:
                assert tuple(np.atleast_1d(a[key])) == tuple(np.atleast_1d(b[key])), f"{key} of group {i} {where}"


def _train_both(name, options, *, grouping=None, schedule=None, steps=6, drop_grad=None, dtype=np.float64):
    """Train a convlab model and its torch mirror side by side; compare after every step."""
    model = _model(dtype=dtype)
    tolerance = TOLERANCE if dtype == np.float64 else FLOAT32_TOLERANCE
    mirror = to_torch(model)
    loss_fn = nn.CrossEntropyLoss()
    ours = getattr(optim, name)(_groups(model.parameters(), grouping), **options)
    theirs = getattr(torch.optim, name)(_groups(mirror.parameters(), grouping), **options)
    ours_schedule = theirs_schedule = None
    if schedule is not None:
        ours_schedule = schedule(lr_scheduler, ours)
        theirs_schedule = schedule(torch.optim.lr_scheduler, theirs)
    _check_options(ours, theirs, "at the start")
    for step in range(steps):
        ours.zero_grad()
        theirs.zero_grad()
        _convlab_gradients(model, loss_fn, step, drop_grad)
        _torch_gradients(mirror, step, drop_grad)
        ours.step()
        theirs.step()
        if schedule is not None:
            ours_schedule.step()
            theirs_schedule.step()
            assert ours_schedule.get_last_lr() == theirs_schedule.get_last_lr(), f"after step {step}"
        _assert_same_weights(model, mirror, f"after step {step}", tolerance)
        _check_options(ours, theirs, f"after step {step}")
    return model, ours


OPTIMIZER_CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.3, 0.8), eps=1e-6)),  # beta1 < 0.5: torch's other lerp form
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.05, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
    ("AdamW", dict(lr=0.02, betas=(0.5, 0.9), maximize=True)),
]


@pytest.mark.parametrize("name, options", OPTIMIZER_CASES, ids=lambda v: v if isinstance(v, str) else repr(v))
def test_optimizer_equals_torch(name, options):
    _train_both(name, options)


@pytest.mark.parametrize("name, options", [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
                                           ("Adam", dict(lr=0.01, amsgrad=True)), ("AdamW", dict(lr=0.01))])
def test_float32_training_equals_torch(name, options):
    model, _ = _train_both(name, options, steps=4, dtype=np.float32)
    assert all(p.data.dtype == np.float32 for p in model.parameters())


@pytest.mark.parametrize("name, options, grouping", [
    ("SGD", dict(lr=0.1, momentum=0.9), ({"lr": 0.01}, {"momentum": 0.5, "weight_decay": 0.1})),
    ("Adam", dict(lr=0.01), ({"lr": 0.05, "amsgrad": True}, {"betas": (0.8, 0.99), "weight_decay": 0.1})),
    ("AdamW", dict(lr=0.01), ({"lr": 0.001}, {"weight_decay": 0.5})),
])
def test_parameter_groups_equal_torch(name, options, grouping):
    _, ours = _train_both(name, options, grouping=grouping)
    assert [g["lr"] for g in ours.param_groups] == [grouping[0].get("lr", options["lr"]),
                                                    grouping[1].get("lr", options["lr"]), options["lr"]]


@pytest.mark.parametrize("name, options", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.01))])
def test_parameters_without_gradient_are_skipped_like_torch(name, options):
    model, ours = _train_both(name, options, drop_grad="6.bias")
    assert ours.state[model[6].bias]  # it has state from the steps where it had a gradient


def _half(epoch):
    return 0.5 ** (epoch // 2)


SCHEDULE_CASES = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=2, gamma=0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[1, 3, 3], gamma=0.5),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=3, eta_min=0.001),  # past T_max too
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.2, total_iters=4),
    "LambdaLR": lambda m, o: m.LambdaLR(o, _half),
    "SequentialLR": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=3), m.CosineAnnealingLR(o, T_max=4)], milestones=[3]),
    "SequentialLR-3": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.5, total_iters=2), m.StepLR(o, 1, gamma=0.7),
            m.MultiStepLR(o, [1, 2], gamma=0.5)], milestones=[2, 4]),
    "OneCycleLR": lambda m, o: m.OneCycleLR(o, max_lr=0.1, total_steps=9),
    "OneCycleLR-linear-3": lambda m, o: m.OneCycleLR(o, max_lr=0.1, total_steps=9, anneal_strategy="linear",
                                                     three_phase=True),
    "OneCycleLR-no-momentum": lambda m, o: m.OneCycleLR(o, max_lr=0.1, epochs=3, steps_per_epoch=3,
                                                        cycle_momentum=False, pct_start=0.5),
}


@pytest.mark.parametrize("schedule", sorted(SCHEDULE_CASES))
@pytest.mark.parametrize("name, options", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.01))])
def test_schedule_equals_torch(schedule, name, options):
    _train_both(name, options, schedule=SCHEDULE_CASES[schedule], steps=8)


def test_one_cycle_per_group_max_lr_equals_torch():
    _train_both("SGD", dict(lr=0.1, momentum=0.9), grouping=({"lr": 0.2}, {}), steps=8,
                schedule=lambda m, o: m.OneCycleLR(o, max_lr=[0.3, 0.1, 0.05], total_steps=8,
                                                   max_momentum=[0.9, 0.95, 0.99]))


# --------------------------------------------------------------------------- state dicts


def _jsonable(state):
    """The optimizer state through JSON where the checkpoint puts it there (the options), arrays kept."""
    return {"state": state["state"], "param_groups": json.loads(json.dumps(state["param_groups"]))}


@pytest.mark.parametrize("name, options, schedule", [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True), "CosineAnnealingLR"),
    ("Adam", dict(lr=0.01, amsgrad=True), "OneCycleLR"),
    ("AdamW", dict(lr=0.01), "SequentialLR"),
])
def test_state_dict_round_trip_continues_exactly(name, options, schedule):
    total, cut = 8, 3
    make = SCHEDULE_CASES[schedule]
    loss_fn = nn.CrossEntropyLoss()

    model = _model()
    optimizer = getattr(optim, name)(model.parameters(), **options)
    scheduler = make(lr_scheduler, optimizer)
    for step in range(total):
        if step == cut:
            weights = model.state_dict()
            saved = _jsonable(optimizer.state_dict())
            saved_schedule = json.loads(json.dumps(scheduler.state_dict()))
        optimizer.zero_grad()
        _convlab_gradients(model, loss_fn, step)
        optimizer.step()
        scheduler.step()

    resumed = _model(seed=99)
    resumed.load_state_dict(weights)
    optimizer2 = getattr(optim, name)(resumed.parameters(), **options)
    scheduler2 = make(lr_scheduler, optimizer2)
    scheduler2.load_state_dict(saved_schedule)
    optimizer2.load_state_dict(saved)
    for step in range(cut, total):
        optimizer2.zero_grad()
        _convlab_gradients(resumed, loss_fn, step)
        optimizer2.step()
        scheduler2.step()
    for key, value in model.state_dict().items():
        assert np.array_equal(value, resumed.state_dict()[key]), key  # bit for bit
    assert scheduler.get_last_lr() == scheduler2.get_last_lr()


def test_state_dict_is_a_copy_in_torchs_layout():
    model = _model()
    optimizer = optim.Adam(model.parameters(), lr=0.01, amsgrad=True)
    _convlab_gradients(model, nn.CrossEntropyLoss(), 0)
    optimizer.step()
    state = optimizer.state_dict()
    assert sorted(state) == ["param_groups", "state"]
    assert state["param_groups"][0]["params"] == list(range(6))
    assert sorted(state["state"]) == list(range(6))
    entry = state["state"][0]
    assert entry["step"] == 1.0 and isinstance(entry["step"], float)
    assert sorted(entry) == ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"]
    assert all(type(v) is np.ndarray and v.dtype == np.float64 for k, v in entry.items() if k != "step")
    before = entry["exp_avg"].copy()
    optimizer.step()
    assert np.array_equal(entry["exp_avg"], before)  # later steps do not change a saved state


@pytest.mark.parametrize("name, options", [
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
    ("AdamW", dict(lr=0.01)),
])
def test_state_dicts_cross_between_convlab_and_torch(name, options):
    """Train both 3 steps, swap the optimizers' states (convlab's into torch and torch's into convlab), go on."""
    model = _model()
    mirror = to_torch(model)
    loss_fn = nn.CrossEntropyLoss()
    ours = getattr(optim, name)(model.parameters(), **options)
    theirs = getattr(torch.optim, name)(mirror.parameters(), **options)
    for step in range(6):
        if step == 3:
            ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
            ours = getattr(optim, name)(model.parameters(), **options)
            ours.load_state_dict(theirs_state)  # tensors in, arrays kept
            theirs = getattr(torch.optim, name)(mirror.parameters(), **options)
            theirs.load_state_dict({
                "state": {i: {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in s.items()}
                          for i, s in ours_state["state"].items()},
                "param_groups": ours_state["param_groups"]})
            assert all(type(v) is np.ndarray for s in ours.state.values() for k, v in s.items() if k != "step")
        ours.zero_grad()
        theirs.zero_grad()
        _convlab_gradients(model, loss_fn, step)
        _torch_gradients(mirror, step)
        ours.step()
        theirs.step()
        _assert_same_weights(model, mirror, f"after step {step}")


def test_load_state_dict_checks_before_changing_anything():
    model = _model()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    _convlab_gradients(model, nn.CrossEntropyLoss(), 0)
    optimizer.step()
    state = optimizer.state_dict()
    other = optim.SGD(list(model.parameters())[:2], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="parameter group 0 has 6 parameters in the state dict and 2"):
        other.load_state_dict(state)
    bad = optimizer.state_dict()
    bad["state"][1]["momentum_buffer"] = np.zeros(7)
    with pytest.raises(ValueError, match=r"'momentum_buffer' of parameter 1 has shape \(7,\)"):
        optimizer.load_state_dict(bad)
    bad = optimizer.state_dict()
    bad["param_groups"][0]["lr"] = float("nan")
    with pytest.raises(ValueError, match="parameter group 0: SGD: Invalid learning rate: `lr` must be a number"):
        optimizer.load_state_dict(bad)
    assert optimizer.param_groups[0]["lr"] == 0.1
    assert np.array_equal(optimizer.state[list(model.parameters())[1]]["momentum_buffer"],
                          state["state"][1]["momentum_buffer"])


def test_zero_grad():
    model = _model()
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    _convlab_gradients(model, nn.CrossEntropyLoss(), 0)
    grad = model[0].weight.grad
    optimizer.zero_grad(set_to_none=False)
    assert model[0].weight.grad is grad and not grad.any()
    optimizer.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(TypeError, match="`set_to_none` must be a bool"):
        optimizer.zero_grad(set_to_none=0)


def test_updates_are_in_place_and_keep_float32():
    param = nn.Parameter(np.ones(3, dtype=np.float32))
    data = param.data
    for optimizer in (optim.SGD([param], lr=0.1, momentum=0.9), optim.Adam([param]), optim.AdamW([param])):
        param.grad = np.full(3, 0.5, dtype=np.float32)
        optimizer.step()
        optimizer.step()
        assert param.data is data and data.dtype == np.float32
        assert all(v.dtype == np.float32 for s in optimizer.state.values() for v in s.values()
                   if isinstance(v, np.ndarray))


def test_named_parameters_and_add_param_group():
    model = _model()
    named = list(model.named_parameters())
    optimizer = optim.Adam(named[:4], lr=0.01)
    assert optimizer.param_groups[0]["param_names"] == [n for n, _ in named[:4]]
    optimizer.add_param_group({"params": named[4:], "lr": 0.5})
    assert optimizer.param_groups[1]["lr"] == 0.5 and optimizer.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optimizer.add_param_group({"params": named[:1]})


# --------------------------------------------------------------------------- refusals


def _param():
    return [nn.Parameter(np.zeros(2))]


@pytest.mark.parametrize("make, message", [
    (lambda: optim.SGD(_param(), lr=-0.1), r"SGD: Invalid learning rate: `lr` \(=-0.1\) must be >= 0"),
    (lambda: optim.SGD(_param(), lr=float("nan")), r"SGD: Invalid learning rate: `lr` must be a number, got nan"),
    (lambda: optim.SGD(_param(), lr=True), r"`lr` must be a real number, got True \(bool\)"),
    (lambda: optim.Adam(_param(), lr="0.1"), r"`lr` must be a real number, got '0.1' \(str\)"),
    (lambda: optim.SGD(_param(), lr=0.1, momentum=-0.5), r"Invalid momentum value: `momentum` \(=-0.5\)"),
    (lambda: optim.SGD(_param(), lr=0.1, weight_decay=-1), r"Invalid weight_decay value: `weight_decay` \(=-1\)"),
    (lambda: optim.SGD(_param(), lr=0.1, nesterov=True), r"Nesterov momentum requires a momentum and zero "
                                                         r"dampening, got momentum=0.0"),
    (lambda: optim.SGD(_param(), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), r"dampening=0.1"),
    (lambda: optim.Adam(_param(), betas=(1.0, 0.9)), r"Invalid beta parameter at index 0: `betas\[0\]` \(=1.0\) "
                                                     r"must be < 1.0"),
    (lambda: optim.Adam(_param(), betas=(0.9, -0.1)), r"Invalid beta parameter at index 1: `betas\[1\]` \(=-0.1\)"),
    (lambda: optim.Adam(_param(), betas=0.9), r"`betas` must be a pair of numbers \(beta1, beta2\), got 0.9"),
    (lambda: optim.AdamW(_param(), eps=-1e-8), r"Invalid epsilon value: `eps` \(=-1e-08\)"),
    (lambda: optim.Adam([{"params": _param(), "lr": -1.0}]), r"`lr` \(=-1.0\) must be >= 0"),
    (lambda: optim.SGD([], lr=0.1), r"empty parameter list"),
    (lambda: optim.SGD(_param() * 2, lr=0.1), r"a parameter appears twice in the group"),
    (lambda: optim.SGD([{"lr": 0.1}]), r"needs the key 'params'"),
])
def test_bad_optimizer_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("make, message", [
    (lambda: optim.SGD(_param(), lr=0.1, nesterov="yes"), r"SGD: `nesterov` must be a bool, got 'yes'"),
    (lambda: optim.Adam(_param(), amsgrad=1), r"Adam: `amsgrad` must be a bool, got 1"),
    (lambda: optim.AdamW(_param(), maximize=None), r"AdamW: `maximize` must be a bool, got None"),
    (lambda: optim.SGD(nn.Parameter(np.zeros(2)), lr=0.1), r"`params` must be an iterable"),
    (lambda: optim.SGD([np.zeros(2)], lr=0.1), r"parameter 0 of the group is a ndarray"),
    (lambda: optim.SGD({"params": _param()}, lr=0.1), r"`params` must be an iterable"),
    (lambda: optim.SGD([{"params": set(_param())}], lr=0.1), r"ordered collection"),
])
def test_bad_optimizer_types(make, message):
    with pytest.raises(TypeError, match=message):
        make()


def _sgd():
    return optim.SGD(_param(), lr=0.1, momentum=0.9)


@pytest.mark.parametrize("make, message", [
    (lambda: lr_scheduler.StepLR(_sgd(), step_size=0), r"StepLR: `step_size` \(=0\) must be >= 1"),
    (lambda: lr_scheduler.StepLR(_sgd(), step_size=2, gamma=float("nan")), r"`gamma` must be a number"),
    (lambda: lr_scheduler.MultiStepLR(_sgd(), milestones=[2, -1]), r"`milestones` \(=-1\) must be >= 0"),
    (lambda: lr_scheduler.CosineAnnealingLR(_sgd(), T_max=0), r"`T_max` \(=0\) must be >= 1"),
    (lambda: lr_scheduler.LinearLR(_sgd(), start_factor=0), r"`start_factor` \(=0.0\) must be in \(0, 1\]"),
    (lambda: lr_scheduler.LinearLR(_sgd(), end_factor=1.5), r"`end_factor` \(=1.5\) must be in \[0, 1\]"),
    (lambda: lr_scheduler.OneCycleLR(_sgd(), max_lr=0.1), r"give `total_steps`, or `epochs` and `steps_per_epoch`"),
    (lambda: lr_scheduler.OneCycleLR(_sgd(), max_lr=0.1, total_steps=0), r"`total_steps` \(=0\) must be >= 1"),
    (lambda: lr_scheduler.OneCycleLR(_sgd(), max_lr=0.1, total_steps=5, pct_start=1.5), r"`pct_start` \(=1.5\)"),
    (lambda: lr_scheduler.OneCycleLR(_sgd(), max_lr=0.1, total_steps=5, anneal_strategy="exp"),
     r"`anneal_strategy` \(='exp'\) must be 'cos' or 'linear'"),
    (lambda: lr_scheduler.OneCycleLR(_sgd(), max_lr=[0.1, 0.2], total_steps=5),
     r"`max_lr` must have one value per parameter group \(1\), got 2"),
    (lambda: lr_scheduler.LambdaLR(_sgd(), [_half, _half]), r"expected 1 lr_lambdas"),
])
def test_bad_schedule_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_sequential_needs_one_optimizer_and_the_milestones():
    a, b = _sgd(), _sgd()
    with pytest.raises(ValueError, match=r"scheduler 1 .* belongs to another optimizer"):
        lr_scheduler.SequentialLR(a, [lr_scheduler.StepLR(a, 1), lr_scheduler.StepLR(b, 1)], milestones=[2])
    with pytest.raises(ValueError, match="one milestone fewer than schedulers, got 2 schedulers and 0"):
        lr_scheduler.SequentialLR(a, [lr_scheduler.StepLR(a, 1), lr_scheduler.StepLR(a, 1)], milestones=[])
    with pytest.raises(TypeError, match=r"`optimizer` must be a convlab\.optim optimizer, got SGD"):
        lr_scheduler.StepLR(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), 1)


def test_one_cycle_refuses_steps_beyond_the_total():
    scheduler = lr_scheduler.OneCycleLR(_sgd(), max_lr=0.1, total_steps=2)
    scheduler.step()
    scheduler.step()
    with pytest.raises(ValueError, match="stepped 3 times, more than total_steps=2"):
        scheduler.step()


def test_schedule_state_is_json_and_lambdas_are_not_saved():
    optimizer = _sgd()
    scheduler = lr_scheduler.LambdaLR(optimizer, _half)
    scheduler.step()
    state = scheduler.state_dict()
    assert state["lr_lambdas"] == [None] and state["last_epoch"] == 1
    assert json.loads(json.dumps(state)) == state
    with pytest.raises(ValueError, match=r"keys \['T_max'\] are not attributes of StepLR"):
        lr_scheduler.StepLR(_sgd(), 1).load_state_dict({"T_max": 3})
