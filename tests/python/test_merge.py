"""merge_attentions: attention over a key set split in parts, merged, equals
one softmax over the union (outputs and gradients)."""
import torch

import gna


def dense_part(q, xk, xv, scale):
    """Attention of every query over the additional keys only, with its LSE."""
    group = q.shape[-2] // xk.shape[-2]
    k, v = xk.repeat_interleave(group, -2), xv.repeat_interleave(group, -2)
    scores = torch.einsum("bxyhd,bnhd->bxyhn", q, k) * scale
    lse = torch.logsumexp(scores, -1)
    return torch.einsum("bxyhn,bnhd->bxyhd", torch.exp(scores - lse[..., None]), v), lse


def test_split_neighborhood_and_additional_kv_merges_to_joint(device):
    g = torch.Generator().manual_seed(0)

    def leaf(*shape):
        return torch.randn(shape, generator=g).to(device).requires_grad_()

    q, k, v = leaf(2, 5, 6, 4, 8), leaf(2, 5, 6, 2, 8), leaf(2, 5, 6, 2, 4)
    xk, xv = leaf(2, 3, 2, 8), leaf(2, 3, 2, 4)
    window = dict(kernel_size=(3, 4), stride=(1, 2), is_causal=(True, False))
    joint, joint_lse = gna.na2d(q, k, v, **window, additional_keys=xk, additional_values=xv,
                                return_lse=True)
    local, local_lse = gna.na2d(q, k, v, **window, return_lse=True)
    extra, extra_lse = dense_part(q, xk, xv, 8 ** -0.5)
    merged, merged_lse = gna.merge_attentions([local, extra], [local_lse, extra_lse])
    torch.testing.assert_close(merged, joint, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(merged_lse, joint_lse, atol=1e-4, rtol=1e-4)

    # Gradients through the merge (into both outputs and LSEs) match the joint op.
    grad = torch.randn(joint.shape, generator=g).to(device)
    tensors = (q, k, v, xk, xv)
    joint_grads = torch.autograd.grad((joint * grad).sum() + joint_lse.sum(), tensors)
    merged_grads = torch.autograd.grad((merged * grad).sum() + merged_lse.sum(), tensors)
    for a, b in zip(merged_grads, joint_grads):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_merge_keeps_dtype_and_ignores_empty_parts():
    out = torch.randn(1, 4, 2, 3, dtype=torch.bfloat16)
    lse = torch.randn(1, 4, 2)
    nothing = torch.full((1, 4, 2), float("-inf"))
    merged, merged_lse = gna.merge_attentions([out, torch.zeros_like(out)], [lse, nothing])
    assert merged.dtype == torch.bfloat16 and merged_lse.dtype == torch.float32
    torch.testing.assert_close(merged, out)
    torch.testing.assert_close(merged_lse, lse)
    empty, empty_lse = gna.merge_attentions([out], [nothing])
    assert not empty.isnan().any() and torch.isinf(empty_lse).all()
