"""The extension gna._C: DLPack views without copies (strides, offsets,
element sizes), streams and devices, and the "one binary for every torch"
packaging claims (stable ABI, no libtorch)."""
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import gna
import mask_attention
from conftest import cpu_backend
from gna import _C


def window(k):
    return _C.Window([k], [1], [1], [False], None)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_numpy_output_views_are_written_in_place(dtype):
    # An output that is a strided view (offset, non-unit element stride, heads
    # and tokens swapped) proves element strides and offsets are read right:
    # the core writes through the view into `buffer`, so nothing was copied.
    rng = np.random.default_rng(0)
    q = rng.standard_normal((1, 6, 2, 4)).astype(dtype)
    buffer = np.zeros((1, 2, 6, 9), dtype)
    output = buffer[:, :, :, 1::2].transpose(0, 2, 1, 3)
    lse_buffer = np.zeros((1, 2, 6), np.float32)
    assert _C.forward(q, q, q, output, lse_buffer.transpose(0, 2, 1), None, None,
                      window(3)) == cpu_backend(q.dtype.name)
    expected, expected_lse = mask_attention.attention(*(torch.from_numpy(q),) * 3, (3,),
                                                      (1,), (1,), (False,))
    tol = 1e-2 if dtype == np.float16 else 1e-5
    np.testing.assert_allclose(buffer[:, :, :, 1::2].transpose(0, 2, 1, 3), expected.numpy(),
                               atol=tol, rtol=tol)
    assert not buffer[..., 0::2].any()  # untouched between the strided elements
    np.testing.assert_allclose(lse_buffer.transpose(0, 2, 1), expected_lse.numpy(), atol=1e-4)


def test_torch_views_with_storage_offset_and_stride_zero(device):
    base = torch.randn(3, 7, 2, 5, device=device)
    q = base[1:2, :, :, 1:]  # storage offset, non-contiguous last dims
    k = base[:1, :, :1, 1:].expand(1, 7, 2, 4)  # stride-0 heads
    out_buffer = torch.zeros(2, 7, 2, 4, device=device)
    output = out_buffer[1:]
    stream = torch.cuda.current_stream().cuda_stream if device == "cuda" else 0
    _C.forward(q, k, q, output, None, None, None, window(3), "auto", stream)
    expected, _ = mask_attention.attention(q.cpu(), k.cpu(), q.cpu(), (3,), (1,), (1,),
                                           (False,))
    torch.testing.assert_close(output.cpu().double(), expected, atol=1e-4, rtol=1e-4)
    assert not out_buffer[0].any()


def test_runs_on_the_callers_stream(cuda):
    q = torch.randn(2, 64, 4, 32, device=cuda)
    expected = gna.na1d(q, q, q, 7)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        out = gna.na1d(q, q, q, 7)
    stream.synchronize()
    torch.testing.assert_close(out, expected)


def test_second_cuda_device(cuda):
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA devices")
    q = torch.randn(1, 16, 2, 32, device="cuda:1")
    out = gna.na1d(q, q, q, 5)
    assert out.device == q.device
    torch.testing.assert_close(out.cpu(), gna.na1d(q.cpu(), q.cpu(), q.cpu(), 5), atol=1e-4,
                               rtol=1e-4)


def test_backend_names_include_the_reference():
    assert "reference" in gna.backend_names()
    assert gna.cuda_device_count() >= 0


def test_extension_uses_the_stable_abi_on_python_312():
    if sys.version_info < (3, 12):
        pytest.skip("the stable ABI build needs Python >= 3.12")
    assert _C.__file__.endswith(".abi3.so"), _C.__file__


def test_extension_does_not_link_libtorch():
    if not shutil.which("readelf"):
        pytest.skip("readelf not installed")
    dynamic = subprocess.run(["readelf", "-d", _C.__file__], capture_output=True, text=True,
                             check=True).stdout
    needed = [line for line in dynamic.splitlines() if "NEEDED" in line]
    assert needed and not any(name in line for line in needed
                              for name in ("torch", "c10", "python3"))


def test_extension_loads_without_torch():
    # Loaded on its own, the extension must not pull torch in.
    script = textwrap.dedent(f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("gna._C", {_C.__file__!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert "torch" not in sys.modules
        print(module.backend_names())
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "reference" in result.stdout, result.stderr
