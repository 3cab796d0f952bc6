"""How each library is asked for each kind of workload (see bench/workloads.py for the kinds).

An adapter's ``build(workload, data)`` returns ``run``, a zero-argument callable doing one timed call
(results ready: device work synchronised), and ``to_numpy(result) -> tuple of numpy arrays`` in the
order of the workload's hand-written reference. A library that is not installed is reported by
``available()`` and skipped by the runner with a note.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

import numpy as np

__all__ = ["LIBRARIES", "Library"]


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch
        return x.detach().cpu().numpy()
    if hasattr(x, "get") and type(x).__module__.startswith("cupy"):
        return x.get()
    return np.asarray(x)


def _flat_numpy(*parts: Any) -> tuple:
    out = []
    for p in parts:
        if isinstance(p, (tuple, list)):
            out.extend(_np(q) for q in p)
        else:
            out.append(_np(p))
    return tuple(out)


def _values_and_jacobian(f):
    """``f`` returning its value twice, so ``jacrev(has_aux=True)`` gives the Jacobian and the value
    from one evaluation."""

    def both(z, c):
        out = f(z, c)
        return out, out

    return both


def _hvp(ad, f):
    """Per-point Hessian-vector product, forward over reverse: the tangent of the gradient along v."""
    return lambda x, v: ad.jvp(ad.grad(f), (x,), (v,))[1]


# Kinds whose result is one array rather than a tuple of results.
_SINGLE = ("hess_point", "hvp_point")


class Library:
    name = "?"
    module: str | None = None

    def available(self) -> tuple[bool, str]:
        if self.module is None:
            return True, ""
        try:
            importlib.import_module(self.module)
        except ImportError as exc:
            return False, f"{self.module} is not installed ({exc})"
        return True, ""

    def build(self, w, d) -> tuple[Callable[[], Any], Callable[[Any], tuple]]:
        raise NotImplementedError


class Hand(Library):
    name = "hand"

    def build(self, w, d):
        return (lambda: w.hand(d)), (lambda out: tuple(np.asarray(o) for o in out))


class Gpuad(Library):
    """gpuad as a JAX user would write it: vmap over a per-point function."""

    name = "gpuad"

    def __init__(self, backend: str = "numpy", jit: bool = False):
        self.backend = backend
        self.jit = jit
        self.name = "gpuad" + ("" if backend == "numpy" else f"-{backend}") + ("-jit" if jit else "")

    def available(self):
        if self.backend == "cupy":
            import gpuad

            ok, why = gpuad.cupy_status()
            return ok, why
        return True, ""

    def build(self, w, d):
        import gpuad as ad
        import gpuad.numpy as gnp
        from gpuad.backend import synchronize

        if self.backend != "numpy":  # one explicit host-to-device copy of the data, before timing
            d = {k: (tuple(ad.asarray(p, backend=self.backend) for p in v) if isinstance(v, tuple) else ad.asarray(v, backend=self.backend)) for k, v in d.items()}
        f = w.fn(gnp)
        if w.kind == "vg_point":
            call = ad.vmap(ad.value_and_grad(f))
            args = (d["X"],)
        elif w.kind == "jvp_point":
            call = ad.vmap(lambda x, t: ad.jvp(f, (x,), (t,)))
            args = (d["X"], d["T"])
        elif w.kind == "vg_shared":
            call = ad.value_and_grad(f)
            args = (d["params"], *[v for k, v in d.items() if k != "params"])
        elif w.kind == "vg_point_input":
            call = ad.vmap(ad.value_and_grad(f, argnums=1), in_axes=(None, 0, 0))
            args = (d["params"], d["X"], d["Y"])
        elif w.kind == "jac_point":
            call = ad.vmap(ad.jacrev(_values_and_jacobian(f), has_aux=True))
            args = (d["Z"], d["F"])
        elif w.kind == "hess_point":
            call, args = ad.vmap(ad.hessian(f)), (d["X"],)
        elif w.kind == "hvp_point":
            call, args = ad.vmap(_hvp(ad, f)), (d["X"], d["V"])
        else:
            raise ValueError(w.kind)
        if self.jit:
            call = ad.jit(call)

        def run():
            out = call(*args)
            synchronize(ad.tree_leaves(out)[0])
            return out

        def to_numpy(out):
            if w.kind == "jac_point":
                jac, value = out
                return _flat_numpy(value, jac)
            if w.kind in _SINGLE:
                return _flat_numpy(out)
            return _flat_numpy(*out)

        return run, to_numpy


class Jax(Library):
    module = "jax"

    def __init__(self, jit: bool):
        self.jit = jit
        self.name = "jax-jit" if jit else "jax-eager"

    def build(self, w, d):
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        d = {k: (tuple(jnp.asarray(p) for p in v) if isinstance(v, tuple) else jnp.asarray(v)) for k, v in d.items()}
        f = w.fn(jnp)
        if w.kind == "vg_point":
            call, args = jax.vmap(jax.value_and_grad(f)), (d["X"],)
        elif w.kind == "jvp_point":
            call, args = jax.vmap(lambda x, t: jax.jvp(f, (x,), (t,))), (d["X"], d["T"])
        elif w.kind == "vg_shared":
            call = jax.value_and_grad(f)
            args = (d["params"], *[v for k, v in d.items() if k != "params"])
        elif w.kind == "vg_point_input":
            call = jax.vmap(jax.value_and_grad(f, argnums=1), in_axes=(None, 0, 0))
            args = (d["params"], d["X"], d["Y"])
        elif w.kind == "jac_point":
            call, args = jax.vmap(jax.jacrev(_values_and_jacobian(f), has_aux=True)), (d["Z"], d["F"])
        elif w.kind == "hess_point":
            call, args = jax.vmap(jax.hessian(f)), (d["X"],)
        elif w.kind == "hvp_point":
            call, args = jax.vmap(_hvp(jax, f)), (d["X"], d["V"])
        else:
            raise ValueError(w.kind)
        if self.jit:
            call = jax.jit(call)

        def run():
            return jax.block_until_ready(call(*args))

        def to_numpy(out):
            if w.kind == "jac_point":
                return _flat_numpy(out[1], out[0])
            if w.kind in _SINGLE:
                return _flat_numpy(out)
            return _flat_numpy(*out)

        return run, to_numpy


def _torch_data(d):
    import torch

    return {k: (tuple(torch.from_numpy(p) for p in v) if isinstance(v, tuple) else torch.from_numpy(v)) for k, v in d.items()}


class TorchAutograd(Library):
    """PyTorch's tape (torch.autograd) on the batched function; per-point derivatives by summing
    over independent points; forward mode through torch.autograd.forward_ad."""

    name = "torch"
    module = "torch"

    def build(self, w, d):
        import array_api_compat.torch as ns
        import torch

        torch.set_num_threads(1)
        d = _torch_data(d)
        f = w.fn(ns)
        if w.kind == "vg_point":

            def run():
                x = d["X"].detach().requires_grad_(True)
                v = f(x)
                (g,) = torch.autograd.grad(v.sum(), x)
                return v.detach(), g

        elif w.kind == "jvp_point":
            import torch.autograd.forward_ad as fwad

            def run():
                with fwad.dual_level():
                    out = fwad.unpack_dual(f(fwad.make_dual(d["X"], d["T"])))
                    return out.primal, out.tangent

        elif w.kind == "vg_shared":
            rest = [v for k, v in d.items() if k != "params"]

            def run():
                params = tuple(p.detach().requires_grad_(True) for p in d["params"])
                loss = f(params, *rest)
                return (loss.detach(), *torch.autograd.grad(loss, params))

        elif w.kind == "vg_point_input":

            def run():
                x = d["X"].detach().requires_grad_(True)
                losses = f(d["params"], x, d["Y"])
                (g,) = torch.autograd.grad(losses.sum(), x)
                return losses.detach(), g

        elif w.kind == "jac_point":

            def run():
                z = d["Z"].detach().requires_grad_(True)
                out = f(z, d["F"])
                rows = [torch.autograd.grad(out[:, j].sum(), z, retain_graph=j + 1 < out.shape[1])[0] for j in range(out.shape[1])]
                return out.detach(), torch.stack(rows, dim=1)

        elif w.kind == "hess_point":  # reverse over reverse: one backward pass per Hessian row

            def run():
                x = d["X"].detach().requires_grad_(True)
                (g,) = torch.autograd.grad(f(x).sum(), x, create_graph=True)
                n = g.shape[1]
                rows = [torch.autograd.grad(g[:, i].sum(), x, retain_graph=i + 1 < n)[0] for i in range(n)]
                return (torch.stack(rows, dim=1),)

        elif w.kind == "hvp_point":  # reverse over reverse: the gradient of <grad f, v>

            def run():
                x = d["X"].detach().requires_grad_(True)
                (g,) = torch.autograd.grad(f(x).sum(), x, create_graph=True)
                return torch.autograd.grad((g * d["V"]).sum(), x)

        else:
            raise ValueError(w.kind)
        return run, lambda out: _flat_numpy(*out)


class TorchFunc(Library):
    """torch.func: JAX-style transforms (vmap, grad_and_value, jvp, jacrev)."""

    name = "torch-func"
    module = "torch"

    def build(self, w, d):
        import array_api_compat.torch as ns
        import torch
        from torch import func as tf

        torch.set_num_threads(1)
        d = _torch_data(d)
        f = w.fn(ns)
        if w.kind == "vg_point":
            call, args = tf.vmap(tf.grad_and_value(f)), (d["X"],)
            flip = True
        elif w.kind == "jvp_point":
            call, args, flip = tf.vmap(lambda x, t: tf.jvp(f, (x,), (t,))), (d["X"], d["T"]), False
        elif w.kind == "vg_shared":
            call = tf.grad_and_value(f)
            args = (d["params"], *[v for k, v in d.items() if k != "params"])
            flip = True
        elif w.kind == "vg_point_input":
            call = tf.vmap(tf.grad_and_value(f, argnums=1), in_dims=(None, 0, 0))
            args, flip = (d["params"], d["X"], d["Y"]), True
        elif w.kind == "jac_point":
            call, args, flip = tf.vmap(tf.jacrev(_values_and_jacobian(f), has_aux=True)), (d["Z"], d["F"]), True
        elif w.kind == "hess_point":
            call, args, flip = tf.vmap(tf.hessian(f)), (d["X"],), None
        elif w.kind == "hvp_point":
            call, args, flip = tf.vmap(_hvp(tf, f)), (d["X"], d["V"]), None
        else:
            raise ValueError(w.kind)

        def run():
            with torch.no_grad():
                return call(*args)

        def to_numpy(out):
            if flip is None:  # one array
                return _flat_numpy(out)
            return _flat_numpy(out[1], out[0]) if flip else _flat_numpy(*out)

        return run, to_numpy


class HipsAutograd(Library):
    """HIPS autograd on the batched function (it has no vmap): make_vjp for per-point results,
    make_jvp for forward mode."""

    name = "autograd"
    module = "autograd"

    def build(self, w, d):
        import autograd
        import autograd.numpy as anp

        f = w.fn(anp)
        if w.kind == "vg_point":

            def run():
                vjp, v = autograd.make_vjp(f)(d["X"])
                return v, vjp(np.ones_like(v))

        elif w.kind == "jvp_point":

            def run():
                return autograd.make_jvp(f)(d["X"])(d["T"])

        elif w.kind == "vg_shared":
            rest = [v for k, v in d.items() if k != "params"]
            vg = autograd.value_and_grad(f)

            def run():
                v, g = vg(d["params"], *rest)
                return (v, *g)

        elif w.kind == "vg_point_input":

            def run():
                vjp, losses = autograd.make_vjp(lambda x: f(d["params"], x, d["Y"]))(d["X"])
                return losses, vjp(np.ones_like(losses))

        elif w.kind == "jac_point":

            def run():
                vjp, out = autograd.make_vjp(lambda z: f(z, d["F"]))(d["Z"])
                rows = []
                for j in range(out.shape[1]):
                    e = np.zeros_like(out)
                    e[:, j] = 1
                    rows.append(vjp(e))
                return out, np.stack(rows, axis=1)

        elif w.kind == "hess_point":  # reverse over reverse: the per-point gradient's VJP, one row at a time
            g = autograd.elementwise_grad(f)

            def run():
                vjp, gx = autograd.make_vjp(g)(d["X"])
                rows = []
                for i in range(gx.shape[1]):
                    e = np.zeros_like(gx)
                    e[:, i] = 1
                    rows.append(vjp(e))
                return (np.stack(rows, axis=1),)

        elif w.kind == "hvp_point":  # reverse over reverse: the gradient of <grad f, v>
            g = autograd.elementwise_grad(f)
            hv = autograd.grad(lambda x: anp.sum(g(x) * d["V"]))

            def run():
                return (hv(d["X"]),)

        else:
            raise ValueError(w.kind)
        return run, lambda out: _flat_numpy(*out)


LIBRARIES: dict[str, Library] = {
    lib.name: lib
    for lib in [
        Gpuad(),
        Gpuad(jit=True),
        Hand(),
        Jax(jit=True),
        Jax(jit=False),
        TorchAutograd(),
        TorchFunc(),
        HipsAutograd(),
        Gpuad("cupy"),
        Gpuad("cupy", jit=True),
    ]
}
