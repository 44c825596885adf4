"""The sharded forward and backward: halo exchange, one ordinary gna call
per head chunk on the rank's local grid, and the halo gradients sent back.

Every rank computes its slab's queries on its local grid (layout.grid):
zero queries stand in for the grid's tokens outside the slab, zero keys for
its tokens outside the halo; neither ever meets a slab query, because the
grid reproduces the whole axis's windows exactly (src/core/slab.hpp). The
kv heads are cut into chunks: the halo of every chunk is posted at once, and
chunk c is computed while later chunks are still on the wire (the backward
likewise sends chunk c's halo gradients while computing chunk c + 1).
"""
import torch
import torch.distributed as dist

from .. import _torch_ops


class Sharded:
    """One call's static part: layout, this rank's plan, peers, chunks."""

    def __init__(self, call, layout, group):
        self.call, self.layout, self.group = call, layout, group
        self.me = dist.get_rank(group)
        self.plan = layout.ranks[self.me]
        self.dim = 1 + call.shard_axis
        self.sends = layout.sends(self.me)
        heads_per_kv = call.shape[-2] // max(call.kv_heads, 1)
        bounds = [round(i * call.kv_heads / call.chunks) for i in range(call.chunks + 1)]
        self.kv_chunks = [slice(a, b) for a, b in zip(bounds, bounds[1:])]
        self.q_chunks = [slice(a * heads_per_kv, b * heads_per_kv)
                         for a, b in zip(bounds, bounds[1:])]
        kernel, stride, dilation, causal, scale = call.window
        self.window = [list(kernel), list(stride), list(dilation), list(causal), scale,
                       call.backend]

    def peer(self, rank):
        return rank if self.group is None else dist.get_global_rank(self.group, rank)

    def rows(self, t, span):
        """The rows of span (absolute) of a tensor laid out on this rank's slab."""
        return t.narrow(self.dim, span[0] - self.plan.slab[0], span[1] - span[0])

    def grid_rows(self, t, span):
        """The rows of span (absolute) of a tensor laid out on the local grid."""
        return t.narrow(self.dim, span[0] - self.plan.grid[0], span[1] - span[0])

    def post(self, sends, receives):
        """Posts point-to-point transfers ([(peer, tensor)] each, in layout
        order on both sides, so every send meets its receive); returns works."""
        ops = [dist.P2POp(dist.isend, t, self.peer(p), self.group) for p, t in sends]
        ops += [dist.P2POp(dist.irecv, t, self.peer(p), self.group) for p, t in receives]
        return dist.batch_isend_irecv(ops) if ops else []

    def on_grid(self, pieces, like):
        """Concatenates (span, tensor) pieces along the shard axis into a
        tensor of the local grid, zeros where no piece lies."""
        grid_lo, grid_hi = self.plan.grid
        parts, at = [], grid_lo
        for (lo, hi), t in sorted(pieces, key=lambda p: p[0][0]):
            if lo > at:
                parts.append(self._zeros(like, lo - at))
            parts.append(t)
            at = hi
        if grid_hi > at:
            parts.append(self._zeros(like, grid_hi - at))
        return torch.cat(parts, self.dim)

    def _zeros(self, like, extent):
        shape = list(like.shape)
        shape[self.dim] = extent
        return like.new_zeros(shape)

    # ---- forward ---------------------------------------------------------

    def forward(self, query, key, value, extra_k, extra_v):
        """(output, lse, saved): this rank's slab of the output and LSE, and
        per chunk what the backward needs."""
        plan = self.plan
        if plan.slab[0] == plan.slab[1]:  # an empty slab: nothing to compute or send
            shape = list(query.shape[:-1])
            return (query.new_empty(shape + [value.shape[-1]]),
                    query.new_empty(shape, dtype=torch.float32), None)
        transfers = []  # per chunk: works, received (span, key, value) pieces
        for kv in self.kv_chunks:
            sends, receives, got = [], [], []
            for peer, span in self.sends:
                for t in (key, value):
                    sends.append((peer, self.rows(t[..., kv, :], span).contiguous()))
            for peer, span in plan.receives:
                pair = []
                for t in (key, value):
                    shape = list(t[..., kv, :].shape)
                    shape[self.dim] = span[1] - span[0]
                    buffer = t.new_empty(shape)
                    receives.append((peer, buffer))
                    pair.append(buffer)
                got.append((span, *pair))
            transfers.append((self.post(sends, receives), got))
        outputs, lses, saved = [], [], []
        for (works, got), kv, qh in zip(transfers, self.kv_chunks, self.q_chunks):
            for w in works:
                w.wait()
            q_grid = self.on_grid([(plan.slab, query[..., qh, :])], query[..., qh, :])
            k_grid = self.on_grid([(plan.slab, key[..., kv, :])] + [(s, k) for s, k, _ in got],
                                  key[..., kv, :])
            v_grid = self.on_grid([(plan.slab, value[..., kv, :])] + [(s, v) for s, _, v in got],
                                  value[..., kv, :])
            xk = None if extra_k is None else extra_k[..., kv, :]
            xv = None if extra_v is None else extra_v[..., kv, :]
            out, lse = _torch_ops.forward_eager(q_grid, k_grid, v_grid, xk, xv, *self.window)
            outputs.append(self.grid_rows(out, plan.slab))
            lses.append(self.grid_rows(lse, plan.slab))
            saved.append((q_grid, k_grid, v_grid, out, lse, xk, xv))
        return torch.cat(outputs, -2), torch.cat(lses, -1), saved

    # ---- backward --------------------------------------------------------

    def backward(self, saved, grad_output, grad_lse, deterministic):
        """Gradients of query, key, value and the additional KV (summed over
        ranks), for this rank's slab."""
        plan = self.plan
        if saved is None:  # an empty slab adds nothing, but joins the all-reduce
            return self._empty_backward()
        dq, dk, dv, dxk, dxv, pending = [], [], [], [], [], []
        for (q, k, v, out, lse, xk, xv), kv, qh in zip(saved, self.kv_chunks, self.q_chunks):
            go = self.on_grid([(plan.slab, grad_output[..., qh, :])], out)
            gl = None
            if grad_lse is not None:
                gl = self.on_grid([(plan.slab, grad_lse[..., qh])], lse)
            gq, gk, gv, gxk, gxv = _torch_ops.backward_eager(
                go, gl, q, k, v, out, lse, xk, xv, *self.window, deterministic)
            # Halo rows go back to their owners, who add them to their own.
            sends, receives, back = [], [], []
            for peer, span in plan.receives:
                for t in (gk, gv):
                    sends.append((peer, self.grid_rows(t, span).contiguous()))
            for peer, span in self.sends:
                pair = [torch.empty_like(self.grid_rows(t, span)) for t in (gk, gv)]
                receives += [(peer, b) for b in pair]
                back.append((span, *pair))
            pending.append((self.post(sends, receives), back))
            dq.append(self.grid_rows(gq, plan.slab))
            dk.append(self.grid_rows(gk, plan.slab).clone())
            dv.append(self.grid_rows(gv, plan.slab).clone())
            dxk.append(gxk)
            dxv.append(gxv)
        for (works, back), gk, gv in zip(pending, dk, dv):
            for w in works:
                w.wait()
            for span, bk, bv in back:
                self.rows(gk, span).add_(bk)
                self.rows(gv, span).add_(bv)
        grads = [torch.cat(dq, -2), torch.cat(dk, -2), torch.cat(dv, -2), None, None]
        if saved[0][5] is not None:
            grads[3:] = torch.cat(dxk, -2), torch.cat(dxv, -2)
        return self._sum_extra(grads)

    def _empty_backward(self):
        call = self.call
        shape = list(call.shape)
        kv_shape = shape[:-2] + [call.kv_heads]
        make = self.like.new_empty
        grads = [make(shape), make(kv_shape + [shape[-1]]), make(kv_shape + [call.head_dim_v]),
                 None, None]
        if call.extra >= 0:
            extra = [shape[0], call.extra, call.kv_heads]
            grads[3:] = (self.like.new_zeros(extra + [shape[-1]]),
                         self.like.new_zeros(extra + [call.head_dim_v]))
        return self._sum_extra(grads)

    def _sum_extra(self, grads):
        # Replicated additional KV: every rank's queries add to its gradient.
        if grads[3] is not None:
            for g in grads[3:]:
                dist.all_reduce(g, group=self.group)
        return grads


class ShardedFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, sharded, query, key, value, extra_k, extra_v):
        out, lse, saved = sharded.forward(query, key, value, extra_k, extra_v)
        sharded.like = query.new_empty(0)  # dtype and device, for empty slabs
        ctx.sharded, ctx.saved = sharded, saved
        ctx.set_materialize_grads(False)
        return out, lse

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output, grad_lse):
        sharded = ctx.sharded
        if grad_output is None:
            call = sharded.call
            shape = list(call.shape[:-1]) + [call.head_dim_v]
            grad_output = sharded.like.new_zeros(shape)
        deterministic = torch.are_deterministic_algorithms_enabled()
        grads = sharded.backward(ctx.saved, grad_output, grad_lse, deterministic)
        ctx.saved = None
        return (None, *grads)
