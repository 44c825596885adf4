"""The numpy path: numpy in, numpy out, no copies needed for strided views,
and the same numbers as the oracle."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import gna
import mask_attention


def oracle(q, k, v, rank, kernel_size, **kw):
    window = dict(kernel_size=(kernel_size,) * rank, stride=(1,) * rank,
                  dilation=(1,) * rank, is_causal=(False,) * rank)
    window.update({key: (val,) * rank for key, val in kw.items()})
    out, lse = mask_attention.attention(*(torch.from_numpy(np.array(t))
                                          for t in (q, k, v)), **window)
    return out.numpy(), lse.numpy()


@pytest.mark.parametrize("rank,na", [(1, gna.na1d), (2, gna.na2d), (3, gna.na3d)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_numpy_matches_oracle(rank, na, dtype):
    rng = np.random.default_rng(rank)
    shape = (2, *([6] * rank), 2, 4)
    q, k, v = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    out, lse = na(q, k, v, 3, dilation=2, return_lse=True)
    assert isinstance(out, np.ndarray) and out.dtype == dtype and out.shape == shape
    assert isinstance(lse, np.ndarray) and lse.dtype == np.float32 and lse.shape == shape[:-1]
    expected, expected_lse = oracle(q, k, v, rank, 3, dilation=2)
    tol = 1e-2 if dtype == np.float16 else 1e-5
    np.testing.assert_allclose(out, expected, atol=tol, rtol=tol)
    np.testing.assert_allclose(lse, expected_lse, atol=1e-4, rtol=1e-4)


def test_numpy_strided_readonly_and_reversed_views():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((2, 4, 10, 8)).astype(np.float32)  # [B, H, N, D]
    q = base.transpose(0, 2, 1, 3)  # heads-last view, not contiguous
    k = base[:, :, ::-1].transpose(0, 2, 1, 3)  # negative stride: copied, still right
    v = np.ascontiguousarray(q)
    v.setflags(write=False)
    out = gna.na1d(q, k, v, 5, is_causal=True)
    expected, _ = oracle(q, k, v, 1, 5, is_causal=True)
    np.testing.assert_allclose(out, expected, atol=1e-5, rtol=1e-5)


def test_numpy_gqa_additional_kv_and_dv():
    rng = np.random.default_rng(3)
    q = rng.standard_normal((1, 9, 4, 6))
    k = rng.standard_normal((1, 9, 2, 6))
    v = rng.standard_normal((1, 9, 2, 3))
    xk, xv = rng.standard_normal((1, 2, 2, 6)), rng.standard_normal((1, 2, 2, 3))
    out = gna.na1d(q, k, v, 3, additional_keys=xk, additional_values=xv)
    expected, _ = mask_attention.attention(
        *(torch.from_numpy(t) for t in (q, k, v)), (3,), (1,), (1,), (False,),
        additional_keys=torch.from_numpy(xk), additional_values=torch.from_numpy(xv))
    np.testing.assert_allclose(out, expected.numpy(), atol=1e-10)
    assert out.shape == (1, 9, 4, 3)


def test_numpy_attention_and_empty():
    q = np.zeros((1, 0, 2, 4), np.float32)
    assert gna.attention(q, q, q).shape == (1, 0, 2, 4)
    assert gna.na2d(np.zeros((0, 3, 3, 1, 2)), np.zeros((0, 3, 3, 1, 2)),
                    np.zeros((0, 3, 3, 1, 2)), 3).shape == (0, 3, 3, 1, 2)


def test_numpy_path_works_without_torch():
    # torch is optional: importing gna must not need it, and the numpy path
    # must then still work.
    script = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None  # makes `import torch` fail
        import numpy as np, gna
        q = np.ones((1, 5, 1, 2), np.float32)
        out = gna.na1d(q, q, q, 3)
        assert out.shape == (1, 5, 1, 2) and np.allclose(out, 1)
        assert not hasattr(gna, "NeighborhoodAttention1D")
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=os.path.dirname(__file__) + "/..", timeout=120)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr
