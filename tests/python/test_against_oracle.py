"""gna against the explicit-mask oracle on randomized problems over every
parameter: rank 1-3, even/odd windows, borders, stride up to the window,
dilation, causal per axis, GQA/MQA, Dv != D, additional KV, scale and
non-contiguous (transposed, sliced, stride-0 expanded) inputs."""
import dataclasses

import pytest
import torch

from compare import check_problem
from conftest import Problem, float_dtypes, random_problem

RANDOM_CASES = 150


@pytest.mark.parametrize("seed", range(RANDOM_CASES))
def test_random_problem(seed, device):
    problem = random_problem(seed, device)
    dtypes = float_dtypes(device)
    check_problem(problem, dtypes[seed % len(dtypes)], device, seed)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("seed", range(3))
def test_other_dtypes_on_cpu(seed, dtype):
    check_problem(random_problem(1000 + seed), dtype, "cpu", seed)


def _problem(spatial, kernel_size, stride=None, dilation=None, is_causal=None, **kw):
    rank = len(spatial)
    return Problem(spatial=spatial, kernel_size=kernel_size,
                   stride=stride or (1,) * rank, dilation=dilation or (1,) * rank,
                   is_causal=is_causal or (False,) * rank, **kw)


# Named corner cases, each a rule of docs/semantics.md at work.
SPECIAL = {
    "self_attention_1d": _problem((9,), (9,)),
    "causal_self_attention_1d": _problem((9,), (9,), is_causal=(True,)),
    "blocked_2d": _problem((8, 6), (4, 3), stride=(4, 3)),
    "blocked_ragged_end": _problem((10,), (4,), stride=(4,)),
    "even_window_borders": _problem((11,), (4,)),
    "window_one_per_frame_3d": _problem((3, 6, 5), (1, 3, 5)),
    "dilation_uneven_groups": _problem((11,), (3,), dilation=(3,)),
    "dilation_and_stride_2d": _problem((12, 9), (3, 2), stride=(2, 2), dilation=(2, 4)),
    "causal_one_axis_3d": _problem((4, 5, 6), (2, 3, 3), is_causal=(True, False, False)),
    "causal_strided": _problem((13,), (5,), stride=(3,), is_causal=(True,)),
    "mqa_dv_differs": _problem((7, 7), (3, 3), heads=4, kv_heads=1, dim=8, dim_v=5),
    "gqa_additional_kv": _problem((10,), (3,), heads=6, kv_heads=2, extra=4, batch=2),
    # Batch broadcasts (stride 0): one head (merged into the head dim by the
    # sm90 tensor maps) and several, value alone and key and value alike.
    "broadcast_batch_value_one_head": _problem((3, 2, 5), (3, 2, 2), stride=(1, 1, 2), batch=2,
                                               extra=1, layouts={"value": "expanded"}),
    "broadcast_batch_kv_two_heads": _problem((6, 5), (3, 3), batch=3, heads=2, kv_heads=2,
                                             layouts={"key": "expanded", "value": "expanded"}),
    "broadcast_batch_kv_one_head": _problem((12,), (5,), batch=2,
                                            layouts={"key": "expanded", "value": "expanded"}),
}


@pytest.mark.parametrize("name", SPECIAL)
def test_special_case(name, device):
    problem = SPECIAL[name]
    if device == "cuda":
        problem = dataclasses.replace(problem, dim=32, dim_v=32 if problem.dim_v == 8 else 16)
    for dtype in float_dtypes(device):
        check_problem(problem, dtype, device)
