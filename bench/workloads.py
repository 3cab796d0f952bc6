"""The benchmark workloads: one function written once against an array namespace ``ns`` (gpuad.numpy,
jax.numpy, array_api_compat.torch or autograd.numpy), its data, and its derivative written by hand in
NumPy (the reference every library is checked against before it is timed).

A workload has a *kind*, which says what is differentiated and how each library is asked for it
(the library adapters in ``bench/libs.py`` know each kind):

  ``vg_point``        per-point value and gradient of ``f(x)``, x = one row of X (B, n);
  ``jvp_point``       per-point value and directional derivative of ``f`` along T (B, n);
  ``vg_shared``       value and gradient of a batch loss ``f(params, *data)`` w.r.t. the shared params;
  ``vg_point_input``  per-example loss and gradient w.r.t. the example, params shared;
  ``jac_point``       per-point Jacobian of a vector function ``f(z, c)`` w.r.t. z;
  ``hess_point``      per-point Hessian of ``f(x)`` (forward over reverse), x = one row of X (B, n);
  ``hvp_point``       per-point Hessian-vector product of ``f`` along V (B, n): ``jvp(grad(f), (x,), (v,))``.

Functions index with ``x[..., i]`` and reduce over ``axis=-1`` so that the same code serves one point
(vmap-style libraries) and a whole batch (libraries without vmap).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = ["Workload", "WORKLOADS"]


@dataclass(frozen=True)
class Workload:
    name: str
    kind: str
    description: str
    fn: Callable[..., Any]  # fn(ns) -> the function to differentiate
    data: Callable[[int, str, np.random.Generator], dict]  # B, dtype, rng -> named numpy arrays
    hand: Callable[[dict], tuple]  # data -> reference outputs (numpy)
    max_size: int = 4_000_000
    extra: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------
# Seed functions (shared/seeds): value and gradient per point
# ------------------------------------------------------------------------------------------------


def seed1_fn(ns):
    def f(x):
        x1, x2 = x[..., 0], x[..., 1]
        return ns.log(x1) + x1 * x2 - ns.sin(x2)

    return f


def seed1_data(B, dtype, rng):
    return {"X": rng.uniform(1.0, 3.0, size=(B, 2)).astype(dtype)}


def seed1_hand(d):
    X = d["X"]
    x1, x2 = X[:, 0], X[:, 1]
    value = np.log(x1) + x1 * x2 - np.sin(x2)
    grad = np.empty_like(X)
    np.add(1 / x1, x2, out=grad[:, 0])
    np.subtract(x1, np.cos(x2), out=grad[:, 1])
    return value, grad


def seed2_fn(ns):
    def f(x):
        v1 = x[..., 0] / x[..., 1]
        v3 = ns.exp(x[..., 1])
        return (ns.sin(v1) + v1 - v3) * (v1 - v3)

    return f


def seed2_data(B, dtype, rng):
    x1 = rng.uniform(0.5, 2.0, size=B)
    x2 = rng.uniform(0.3, 1.0, size=B)
    return {"X": np.stack([x1, x2], axis=1).astype(dtype)}


def seed2_hand(d):
    X = d["X"]
    x1, x2 = X[:, 0], X[:, 1]
    v1 = x1 / x2
    v3 = np.exp(x2)
    b = v1 - v3
    a = np.sin(v1) + b
    df_dv1 = (np.cos(v1) + 1) * b + a
    grad = np.empty_like(X)
    np.divide(df_dv1, x2, out=grad[:, 0])
    np.subtract(-df_dv1 * v1 / x2, (a + b) * v3, out=grad[:, 1])
    return a * b, grad


# ------------------------------------------------------------------------------------------------
# A 16-input elementwise function: gradient, and a JVP with one tangent
# ------------------------------------------------------------------------------------------------


def elem16_fn(ns):
    def f(x):
        return ns.sum(ns.sin(x) * ns.exp(-(x * x)), axis=-1) + ns.sum(x[..., :-1] * x[..., 1:], axis=-1)

    return f


def elem16_data(B, dtype, rng):
    return {"X": rng.uniform(-2.0, 2.0, size=(B, 16)).astype(dtype)}


def _elem16_value_grad(X):
    s, c, e = np.sin(X), np.cos(X), np.exp(-X * X)
    se = s * e
    value = se.sum(axis=1) + (X[:, :-1] * X[:, 1:]).sum(axis=1)
    grad = c * e
    grad -= 2 * X * se
    grad[:, :-1] += X[:, 1:]
    grad[:, 1:] += X[:, :-1]
    return value, grad


def elem16_hand(d):
    return _elem16_value_grad(d["X"])


def elem16_jvp_data(B, dtype, rng):
    d = elem16_data(B, dtype, rng)
    d["T"] = rng.standard_normal(size=(B, 16)).astype(dtype)
    return d


def elem16_jvp_hand(d):
    value, grad = _elem16_value_grad(d["X"])
    return value, np.einsum("bi,bi->b", grad, d["T"])


# ------------------------------------------------------------------------------------------------
# The seed notes' MLP, 32-64-64-10: sigmoid, tanh, softmax, cross-entropy (one-hot labels)
# ------------------------------------------------------------------------------------------------

MLP_SIZES = (32, 64, 64, 10)


def _mlp_logits(ns, params, x):
    W1, b1, W2, b2, W3, b3 = params
    h1 = 1 / (1 + ns.exp(-(x @ W1 + b1)))
    h2 = ns.tanh(h1 @ W2 + b2)
    return h2 @ W3 + b3


def _cross_entropy(ns, z, y):
    m = ns.max(z, axis=-1, keepdims=True)
    lse = ns.log(ns.sum(ns.exp(z - m), axis=-1)) + m[..., 0]
    return lse - ns.sum(z * y, axis=-1)


def mlp_mean_loss_fn(ns):
    def loss(params, X, Y):
        per_example = _cross_entropy(ns, _mlp_logits(ns, params, X), Y)
        return ns.sum(per_example) / X.shape[0]

    return loss


def mlp_example_loss_fn(ns):
    def loss(params, x, y):
        return _cross_entropy(ns, _mlp_logits(ns, params, x), y)

    return loss


def mlp_data(B, dtype, rng):
    params = []
    for fan_in, fan_out in zip(MLP_SIZES[:-1], MLP_SIZES[1:]):
        params.append(rng.standard_normal((fan_in, fan_out)) / math.sqrt(fan_in))
        params.append(0.1 * rng.standard_normal(fan_out))
    X = rng.standard_normal((B, MLP_SIZES[0]))
    Y = np.eye(MLP_SIZES[-1])[rng.integers(0, MLP_SIZES[-1], size=B)]
    return {"params": tuple(p.astype(dtype) for p in params), "X": X.astype(dtype), "Y": Y.astype(dtype)}


def _mlp_backprop(d, scale):
    """Forward pass and backpropagation by hand; ``scale`` multiplies the output error (1/B for
    the mean loss, 1 for per-example losses)."""
    W1, b1, W2, b2, W3, b3 = d["params"]
    X, Y = d["X"], d["Y"]
    h1 = 1 / (1 + np.exp(-(X @ W1 + b1)))
    h2 = np.tanh(h1 @ W2 + b2)
    z = h2 @ W3 + b3
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(axis=1, keepdims=True)
    losses = np.log(s[:, 0]) + m[:, 0] - (z * Y).sum(axis=1)
    dz = e / s - Y
    if scale != 1:
        dz *= scale
    da2 = (dz @ W3.T) * (1 - h2 * h2)
    da1 = (da2 @ W2.T) * (h1 * (1 - h1))
    return losses, (X, h1, h2, dz, da2, da1)


def mlp_weights_hand(d):
    B = d["X"].shape[0]
    losses, (X, h1, h2, dz, da2, da1) = _mlp_backprop(d, 1.0 / B)
    grads = (X.T @ da1, da1.sum(0), h1.T @ da2, da2.sum(0), h2.T @ dz, dz.sum(0))
    return (losses.sum() / B, *grads)


def mlp_inputs_hand(d):
    losses, (_, _, _, _, _, da1) = _mlp_backprop(d, 1.0)
    return losses, da1 @ d["params"][0].T


# ------------------------------------------------------------------------------------------------
# Bundle adjustment: reprojection residual of one observation, 15 inputs -> 2 residuals
# (ADBench's camera: Rodrigues rotation r, centre C, focal f, principal point x0, radial k1 k2;
# point X; weight w)
# ------------------------------------------------------------------------------------------------


def ba_fn(ns):
    def residual(z, feat):
        r0, r1, r2 = z[..., 0], z[..., 1], z[..., 2]
        v0, v1, v2 = z[..., 11] - z[..., 3], z[..., 12] - z[..., 4], z[..., 13] - z[..., 5]
        theta = ns.sqrt(r0 * r0 + r1 * r1 + r2 * r2)
        k0, k1, k2 = r0 / theta, r1 / theta, r2 / theta
        c, s = ns.cos(theta), ns.sin(theta)
        kv = (k0 * v0 + k1 * v1 + k2 * v2) * (1 - c)
        x = v0 * c + (k1 * v2 - k2 * v1) * s + k0 * kv
        y = v1 * c + (k2 * v0 - k0 * v2) * s + k1 * kv
        w = v2 * c + (k0 * v1 - k1 * v0) * s + k2 * kv
        p0, p1 = x / w, y / w
        rsq = p0 * p0 + p1 * p1
        scale = z[..., 6] * (1 + z[..., 9] * rsq + z[..., 10] * rsq * rsq)
        weight = z[..., 14]
        e0 = weight * (scale * p0 + z[..., 7] - feat[..., 0])
        e1 = weight * (scale * p1 + z[..., 8] - feat[..., 1])
        return ns.stack([e0, e1], axis=-1)

    return residual


def ba_data(B, dtype, rng):
    z = np.empty((B, 15))
    z[:, 0:3] = 0.3 * rng.standard_normal((B, 3))  # rotation, away from the theta = 0 branch
    z[:, 3:6] = 0.5 * rng.standard_normal((B, 3))  # camera centre
    z[:, 6] = rng.uniform(0.5, 1.5, B)  # focal length
    z[:, 7:9] = 0.1 * rng.standard_normal((B, 2))  # principal point
    z[:, 9:11] = 0.01 * rng.standard_normal((B, 2))  # radial distortion
    z[:, 11:13] = rng.standard_normal((B, 2))
    z[:, 13] = 6.0 + 0.5 * rng.standard_normal(B)  # points in front of the camera
    z[:, 14] = rng.uniform(0.5, 1.5, B)  # weight
    feat = 0.3 * rng.standard_normal((B, 2))
    return {"Z": z.astype(dtype), "F": feat.astype(dtype)}


def _skew(a):
    """(B, 3) -> (B, 3, 3) cross-product matrices [a]_x."""
    o = np.zeros_like(a[:, 0])
    return np.stack(
        [
            np.stack([o, -a[:, 2], a[:, 1]], axis=1),
            np.stack([a[:, 2], o, -a[:, 0]], axis=1),
            np.stack([-a[:, 1], a[:, 0], o], axis=1),
        ],
        axis=1,
    )


def ba_hand(d):
    """The 2 x 15 Jacobian by the chain rule through Rodrigues' formula, written out."""
    z, feat = d["Z"], d["F"]
    B = z.shape[0]
    r, v = z[:, 0:3], z[:, 11:14] - z[:, 3:6]
    theta = np.sqrt((r * r).sum(1))
    k = r / theta[:, None]
    c, s = np.cos(theta), np.sin(theta)
    kdotv = (k * v).sum(1)
    kxv = np.cross(k, v)
    Xr = v * c[:, None] + kxv * s[:, None] + k * (kdotv * (1 - c))[:, None]
    eye = np.eye(3, dtype=z.dtype)
    R = c[:, None, None] * eye + s[:, None, None] * _skew(k) + (1 - c)[:, None, None] * k[:, :, None] * k[:, None, :]
    dX_dtheta = -s[:, None] * v + c[:, None] * kxv + (s * kdotv)[:, None] * k
    dX_dk = -s[:, None, None] * _skew(v) + (1 - c)[:, None, None] * (kdotv[:, None, None] * eye + k[:, :, None] * v[:, None, :])
    dk_dr = (eye - k[:, :, None] * k[:, None, :]) / theta[:, None, None]
    dX_dr = dX_dtheta[:, :, None] * k[:, None, :] + np.einsum("bij,bjk->bik", dX_dk, dk_dr)

    p = Xr[:, :2] / Xr[:, 2:3]
    rsq = (p * p).sum(1)
    f, kd1, kd2, w = z[:, 6], z[:, 9], z[:, 10], z[:, 14]
    L = 1 + kd1 * rsq + kd2 * rsq * rsq
    proj = (f * L)[:, None] * p + z[:, 7:9]
    err = w[:, None] * (proj - feat)

    dp_dX = np.zeros((B, 2, 3), dtype=z.dtype)
    dp_dX[:, 0, 0] = dp_dX[:, 1, 1] = 1 / Xr[:, 2]
    dp_dX[:, :, 2] = -p / Xr[:, 2:3]
    dL_dp = ((kd1 + 2 * kd2 * rsq) * 2)[:, None] * p
    dproj_dp = f[:, None, None] * (L[:, None, None] * np.eye(2, dtype=z.dtype) + p[:, :, None] * dL_dp[:, None, :])
    de_dX = w[:, None, None] * np.einsum("bij,bjk->bik", dproj_dp, dp_dX)

    J = np.empty((B, 2, 15), dtype=z.dtype)
    J[:, :, 0:3] = np.einsum("bij,bjk->bik", de_dX, dX_dr)
    de_dv = np.einsum("bij,bjk->bik", de_dX, R)
    J[:, :, 3:6] = -de_dv
    J[:, :, 11:14] = de_dv
    J[:, :, 6] = w[:, None] * L[:, None] * p
    J[:, :, 7:9] = w[:, None, None] * np.eye(2, dtype=z.dtype)
    J[:, :, 9] = (w * f * rsq)[:, None] * p
    J[:, :, 10] = (w * f * rsq * rsq)[:, None] * p
    J[:, :, 14] = proj - feat
    return err, J


# ------------------------------------------------------------------------------------------------
# Gaussian mixture: negative log-likelihood of B points, gradient w.r.t. the mixture's parameters
# (K = 5 components, diagonal covariances, D = 3)
# ------------------------------------------------------------------------------------------------

GMM_K, GMM_D = 5, 3


def gmm_fn(ns):
    def nll(params, X):
        alphas, means, log_sigmas = params
        diff = (X[:, None, :] - means) * ns.exp(-log_sigmas)  # (B, K, D)
        q = -0.5 * ns.sum(diff * diff, axis=-1) - ns.sum(log_sigmas, axis=-1) + alphas  # (B, K)
        m = ns.max(q, axis=-1, keepdims=True)
        lse = ns.log(ns.sum(ns.exp(q - m), axis=-1)) + m[..., 0]
        am = ns.max(alphas)
        log_norm = ns.log(ns.sum(ns.exp(alphas - am))) + am
        const = 0.5 * GMM_D * math.log(2 * math.pi)
        return -ns.sum(lse) + X.shape[0] * (log_norm + const)

    return nll


def gmm_data(B, dtype, rng):
    params = (
        rng.standard_normal(GMM_K),
        2.0 * rng.standard_normal((GMM_K, GMM_D)),
        0.3 * rng.standard_normal((GMM_K, GMM_D)),
    )
    return {"params": tuple(p.astype(dtype) for p in params), "X": (2.0 * rng.standard_normal((B, GMM_D))).astype(dtype)}


def gmm_hand(d):
    alphas, means, log_sigmas = d["params"]
    X = d["X"]
    B = X.shape[0]
    inv = np.exp(-log_sigmas)
    diff = (X[:, None, :] - means) * inv
    sq = diff * diff
    q = -0.5 * sq.sum(-1) - log_sigmas.sum(-1) + alphas
    m = q.max(-1, keepdims=True)
    e = np.exp(q - m)
    s = e.sum(-1, keepdims=True)
    resp = e / s  # (B, K)
    ea = np.exp(alphas - alphas.max())
    w = ea / ea.sum()
    value = -(np.log(s[:, 0]) + m[:, 0]).sum() + B * (np.log(ea.sum()) + alphas.max() + 0.5 * GMM_D * math.log(2 * math.pi))
    d_alphas = B * w - resp.sum(0)
    d_means = -np.einsum("bk,bkd->kd", resp, diff) * inv
    d_log_sigmas = -np.einsum("bk,bkd->kd", resp, sq - 1)
    return value, d_alphas, d_means, d_log_sigmas


# ------------------------------------------------------------------------------------------------
# Gaussian log-density with a per-point 3x3 covariance (issue 23): value and gradient w.r.t. the
# point x and its covariance S, per point. Both travel in one row z = (x, S.ravel()) of 12 numbers
# (the vg_point kind); S is symmetric positive definite.
# ------------------------------------------------------------------------------------------------

GAUSS3_CONST = 1.5 * math.log(2 * math.pi)


def gauss3_fn(ns):
    def logpdf(z):
        x = z[..., 0:3]
        S = ns.reshape(z[..., 3:12], tuple(z.shape[:-1]) + (3, 3))
        L = ns.linalg.cholesky(S)
        r = ns.linalg.solve(L, x[..., None])[..., 0]  # L^-1 x (a stack of vectors: one column each)
        _, logdet = ns.linalg.slogdet(S)
        return -0.5 * ns.sum(r * r, axis=-1) - 0.5 * logdet - GAUSS3_CONST

    return logpdf


def gauss3_data(B, dtype, rng):
    A = rng.standard_normal((B, 3, 3))
    S = A @ np.swapaxes(A, -1, -2) / 3.0 + np.eye(3)  # eigenvalues >= 1
    x = rng.standard_normal((B, 3))
    return {"X": np.concatenate([x, S.reshape(B, 9)], axis=1).astype(dtype)}


def gauss3_hand(d):
    Z = d["X"]
    B = Z.shape[0]
    x, S = Z[:, :3], Z[:, 3:].reshape(B, 3, 3)
    L = np.linalg.cholesky(S)
    Linv = np.linalg.inv(L)  # triangular, 3x3: the inverse serves the solve and S^-1
    r = np.einsum("bij,bj->bi", Linv, x)
    a = np.einsum("bji,bj->bi", Linv, r)  # S^-1 x = L^-T r
    logdet = 2.0 * np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(-1)
    value = -0.5 * (r * r).sum(-1) - 0.5 * logdet - GAUSS3_CONST
    Sinv = np.einsum("bki,bkj->bij", Linv, Linv)
    grad = np.empty_like(Z)
    grad[:, :3] = -a
    grad[:, 3:] = (0.5 * (a[:, :, None] * a[:, None, :] - Sinv)).reshape(B, 9)
    return value, grad


# ------------------------------------------------------------------------------------------------
# Second order (issue 21): a per-point Hessian of a 4-input function, and a per-point
# Hessian-vector product of a 3-input function (forward over reverse). Both mix exp, log, sin, cos,
# products and division; the references are the second derivatives written out.
# ------------------------------------------------------------------------------------------------


def hess4_fn(ns):
    def f(x):
        x0, x1, x2, x3 = x[..., 0], x[..., 1], x[..., 2], x[..., 3]
        return ns.sin(x0 * x1) + ns.exp(-(x2 * x2)) * x3 + ns.log(1 + x0 * x0 + x3 * x3) + x1 * x2 / (1 + x3 * x3)

    return f


def hess4_data(B, dtype, rng):
    return {"X": rng.uniform(-1.5, 1.5, size=(B, 4)).astype(dtype)}


def hess4_hand(d):
    """The 10 distinct entries of the symmetric 4 x 4 Hessian, term by term, mirrored into (B, 4, 4)."""
    X = d["X"]
    x0, x1, x2, x3 = X[:, 0], X[:, 1], X[:, 2], X[:, 3]
    # sin(x0 x1)
    a = x0 * x1
    s, c = np.sin(a), np.cos(a)
    # exp(-x2^2) x3
    e = np.exp(-(x2 * x2))
    # log(q), q = 1 + x0^2 + x3^2: d2/dxi dxj = 2 delta_ij / q - 4 xi xj / q^2
    q = 1 + x0 * x0 + x3 * x3
    iq = 1 / q
    iq2 = iq * iq
    # x1 x2 r(x3), r = 1 / p, p = 1 + x3^2: r' = -2 x3 / p^2, r'' = (6 x3^2 - 2) / p^3
    r = 1 / (1 + x3 * x3)
    r1 = -2 * x3 * r * r
    r2 = (6 * x3 * x3 - 2) * r * r * r
    h00 = 2 * iq - 4 * x0 * x0 * iq2 - x1 * x1 * s
    h01 = c - a * s
    h02 = np.zeros_like(x0)
    h03 = -4 * x0 * x3 * iq2
    h11 = -x0 * x0 * s
    h12 = r
    h13 = x2 * r1
    h22 = (4 * x2 * x2 - 2) * e * x3
    h23 = x1 * r1 - 2 * x2 * e
    h33 = 2 * iq - 4 * x3 * x3 * iq2 + x1 * x2 * r2
    H = np.stack([h00, h01, h02, h03,
                  h01, h11, h12, h13,
                  h02, h12, h22, h23,
                  h03, h13, h23, h33], axis=-1)
    return (H.reshape(X.shape[0], 4, 4),)


def hvp3_fn(ns):
    def f(x):
        x0, x1, x2 = x[..., 0], x[..., 1], x[..., 2]
        return ns.exp(-(x0 * x1)) + x2 * ns.log(1 + x0 * x0) + ns.sin(x1) * ns.cos(x2) + x0 / (1 + x2 * x2)

    return f


def hvp3_data(B, dtype, rng):
    return {"X": rng.uniform(-1.5, 1.5, size=(B, 3)).astype(dtype), "V": rng.standard_normal(size=(B, 3)).astype(dtype)}


def hvp3_hand(d):
    """The 6 distinct entries of the 3 x 3 Hessian, term by term, applied to V."""
    X, V = d["X"], d["V"]
    x0, x1, x2 = X[:, 0], X[:, 1], X[:, 2]
    v0, v1, v2 = V[:, 0], V[:, 1], V[:, 2]
    E = np.exp(-(x0 * x1))  # exp(-x0 x1)
    iq = 1 / (1 + x0 * x0)  # x2 log(1 + x0^2)
    s1, c1, s2, c2 = np.sin(x1), np.cos(x1), np.sin(x2), np.cos(x2)  # sin(x1) cos(x2)
    ip = 1 / (1 + x2 * x2)  # x0 / (1 + x2^2)
    s1c2 = s1 * c2
    h00 = x1 * x1 * E + 2 * x2 * (1 - x0 * x0) * iq * iq
    h01 = (x0 * x1 - 1) * E
    h02 = 2 * x0 * iq - 2 * x2 * ip * ip
    h11 = x0 * x0 * E - s1c2
    h12 = -c1 * s2
    h22 = x0 * (6 * x2 * x2 - 2) * ip * ip * ip - s1c2
    hv = np.stack([h00 * v0 + h01 * v1 + h02 * v2,
                   h01 * v0 + h11 * v1 + h12 * v2,
                   h02 * v0 + h12 * v1 + h22 * v2], axis=-1)
    return (hv,)


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in [
        Workload("seed1", "vg_point", "ln x1 + x1 x2 - sin x2: value and gradient per point (2 inputs)", seed1_fn, seed1_data, seed1_hand),
        Workload(
            "seed2",
            "vg_point",
            "(sin(x1/x2) + x1/x2 - e^x2)(x1/x2 - e^x2): value and gradient per point (2 inputs)",
            seed2_fn,
            seed2_data,
            seed2_hand,
        ),
        Workload(
            "elem16_grad",
            "vg_point",
            "sum sin(x_i) exp(-x_i^2) + sum x_i x_(i+1): value and gradient per point (16 inputs)",
            elem16_fn,
            elem16_data,
            elem16_hand,
        ),
        Workload(
            "elem16_jvp",
            "jvp_point",
            "the same 16-input function: value and JVP along one tangent per point",
            elem16_fn,
            elem16_jvp_data,
            elem16_jvp_hand,
        ),
        Workload(
            "mlp_weights",
            "vg_shared",
            "MLP 32-64-64-10 (sigmoid, tanh, softmax cross-entropy): gradient of the mean loss w.r.t. the weights",
            mlp_mean_loss_fn,
            mlp_data,
            mlp_weights_hand,
            max_size=1_000_000,
        ),
        Workload(
            "mlp_inputs",
            "vg_point_input",
            "the same MLP: per-example loss and gradient w.r.t. the example (weights shared)",
            mlp_example_loss_fn,
            mlp_data,
            mlp_inputs_hand,
            max_size=1_000_000,
        ),
        Workload(
            "ba_jacobian",
            "jac_point",
            "bundle adjustment: 2 x 15 Jacobian of the reprojection residual per observation (Rodrigues)",
            ba_fn,
            ba_data,
            ba_hand,
            max_size=1_000_000,
        ),
        Workload(
            "gmm_grad",
            "vg_shared",
            f"Gaussian mixture (K={GMM_K}, D={GMM_D}, diagonal): NLL of B points, gradient w.r.t. the parameters",
            gmm_fn,
            gmm_data,
            gmm_hand,
        ),
        Workload(
            "gauss3_grad",
            "vg_point",
            "Gaussian log-density, per-point 3x3 covariance (cholesky, solve, slogdet): value and gradient w.r.t. (x, S)",
            gauss3_fn,
            gauss3_data,
            gauss3_hand,
            max_size=1_000_000,
        ),
        Workload(
            "hess4",
            "hess_point",
            "sin(x0 x1) + exp(-x2^2) x3 + log(1 + x0^2 + x3^2) + x1 x2 / (1 + x3^2): 4 x 4 Hessian per point",
            hess4_fn,
            hess4_data,
            hess4_hand,
        ),
        Workload(
            "hvp3",
            "hvp_point",
            "exp(-x0 x1) + x2 log(1 + x0^2) + sin x1 cos x2 + x0 / (1 + x2^2): Hessian-vector product per point (forward over reverse)",
            hvp3_fn,
            hvp3_data,
            hvp3_hand,
        ),
    ]
}
