"""The 1x1 convolutions' matrix-product route (rwgui.core.priors.skip._Conv1x1) computes what the plain
convolution computes: outputs and gradients within 1e-6 (they were bit-identical where measured), in float32 and
under bfloat16 autocast, NCHW and channels-last, grey and RGB, odd sizes; and it is taken exactly where torch
would run its slow generic kernel."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch.profiler import profile

from rwgui.core.priors import skip
from rwgui.core.priors.skip import SkipNet, _Conv1x1, _takes_slow_conv

CPU = torch.device("cpu")
LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
TOL = {"atol": 1e-6, "rtol": 1e-6}


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One thread: where torch sends float32 1x1 convolutions to ``_slow_conv2d`` (what the route replaces)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
    skip.GEMM_1X1 = True


def _run(module: torch.nn.Module, x: torch.Tensor, route: bool, autocast: bool) -> list[torch.Tensor]:
    skip.GEMM_1X1 = route
    try:
        module.zero_grad(set_to_none=True)
        x = x.detach().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            y = module(x)
        (y.float() * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        assert x.grad is not None
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads)
        return [y.detach().float(), x.grad, *(g for g in grads if g is not None)]
    finally:
        skip.GEMM_1X1 = True


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("autocast", [False, True], ids=["float32", "bf16-autocast"])
@pytest.mark.parametrize(("cin", "cout", "bias"), [(1, 1, True), (3, 3, True), (32, 4, True), (16, 3, False)])
@pytest.mark.parametrize("hw", [(17, 23), (8, 8)])
def test_1x1_route_matches_the_plain_convolution(one_thread, layout, autocast, cin, cout, bias, hw) -> None:
    torch.manual_seed(0)
    mf = LAYOUTS[layout]
    conv = _Conv1x1(cin, cout, 1, bias=bias).to(CPU, memory_format=mf)
    x = (0.5 * torch.randn(1, cin, *hw)).contiguous(memory_format=mf)
    routed, plain = _run(conv, x, True, autocast), _run(conv, x, False, autocast)
    assert routed[0].is_contiguous(memory_format=mf)  # the layout the convolution would give
    for a, b in zip(routed, plain, strict=True):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("autocast", [False, True], ids=["float32", "bf16-autocast"])
@pytest.mark.parametrize("channels", [1, 3], ids=["grey", "rgb"])
def test_skipnet_is_unchanged_by_the_route(one_thread, layout, autocast, channels) -> None:
    torch.manual_seed(0)
    mf = LAYOUTS[layout]
    net = SkipNet(8, channels, num_scales=3, channels_down=(8,), channels_up=(8,), channels_skip=(4,))
    net = net.to(CPU, memory_format=mf)  # type: ignore[call-overload]
    x = (0.1 * torch.randn(1, 8, 24, 40)).contiguous(memory_format=mf)  # 24x40: not square, 3 scales
    for a, b in zip(_run(net, x, True, autocast), _run(net, x, False, autocast), strict=True):
        torch.testing.assert_close(a, b, **TOL)


def _slow_1x1_calls(net: torch.nn.Module, x: torch.Tensor) -> int:
    """``_slow_conv2d_forward`` calls on a 1x1 weight in one forward and backward (small 3x3 convolutions go
    there too: torch keeps inputs of at most 20480 values off oneDNN)."""
    with profile(record_shapes=True) as prof:
        net(x).sum().backward()
    return sum(e.name == "aten::_slow_conv2d_forward" and list(e.input_shapes[1][2:]) == [1, 1] for e in prof.events())


@pytest.mark.parametrize("layout", LAYOUTS)
def test_float32_on_one_thread_takes_no_slow_1x1_convolution(one_thread, layout) -> None:
    torch.manual_seed(0)
    mf = LAYOUTS[layout]
    net = SkipNet(8, 3, num_scales=2, channels_down=(8,), channels_up=(8,), channels_skip=(4,))
    net = net.to(CPU, memory_format=mf)  # type: ignore[call-overload]
    x = torch.randn(1, 8, 32, 32).contiguous(memory_format=mf)
    assert _slow_1x1_calls(net, x) == 0
    skip.GEMM_1X1 = False
    assert _slow_1x1_calls(net, x) == 5  # what the route replaces is still torch's choice


_select = getattr(torch._C, "_select_conv_backend", None)


@pytest.mark.skipif(_select is None, reason="this torch does not expose its convolution backend choice")
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(1, 128, 64, 64), (1, 8, 16, 16), (4, 32, 32, 32), (16, 8, 8, 8), (1, 3, 17, 23)])
def test_the_route_is_taken_exactly_where_torch_picks_its_slow_kernel(threads, shape) -> None:
    """float32 only: the route is float32's (a bfloat16 1x1 goes to oneDNN where the CPU has native bfloat16,
    and is left alone elsewhere)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        if torch.get_num_threads() != threads:
            pytest.skip("cannot set the thread count")
        x = torch.zeros(shape)
        w = torch.zeros(4, shape[1], 1, 1)
        assert _select is not None
        backend = _select(x, w, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, None)
        assert _takes_slow_conv(x, w) == (str(backend).endswith("Slow2d")), backend
    finally:
        torch.set_num_threads(before)


def test_the_route_is_not_taken_under_autocast(one_thread) -> None:
    x, w = torch.zeros(1, 8, 16, 16), torch.zeros(4, 8, 1, 1)
    assert _takes_slow_conv(x, w)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not _takes_slow_conv(x, w)


def test_only_1x1_stride_1_unpadded_convolutions_are_routed() -> None:
    net = SkipNet(4, 3, num_scales=2, channels_down=(8,), channels_up=(8,), channels_skip=(4,))
    for m in net.modules():
        if isinstance(m, _Conv1x1):
            assert m.kernel_size == (1, 1) and m.stride == (1, 1) and m.padding == (0, 0)
        elif isinstance(m, torch.nn.Conv2d):
            assert m.kernel_size != (1, 1) or m.stride != (1, 1)
    assert sum(isinstance(m, _Conv1x1) for m in net.modules()) == 5  # 2 skips, 2 conv1x1_up, the output
