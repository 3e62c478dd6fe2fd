"""One T5 decoder step for one token, compiled by numba for a CPU: every layer's
products, attention, norms and feed-forward in one call.

Why: a decoding step is a pass over the decoder's weights with one row of input. Run
as torch ops it is about 1,900 small operations a token at flan-t5-base's size, whose
dispatch costs as much as reading the weights, and torch's one-row products read
memory at half the machine's speed (fbgemm's int8 kernel about 25 GB/s where a plain
sum reads 35-60). Here each product is a loop over the weight's rows, split between
threads (prange), that reads the weights once at the speed of a sum; everything else
is a few microseconds of plain loops. numba brings its own compiler (LLVM in its
wheel), so this needs nothing installed beside the Python packages; the compiled code
is cached beside this file (or in the user's cache directory) after the first run.

Weights are as the caller gives them: float32 (exact mode, the model's own tensors, no
copy) or int8 with a float32 scale per row (fast mode). The input of every product
stays float32 (no activation is rounded to 8 bits, so T5's feed-forward outliers need no
special case). Products sum in another order than torch's, so results differ from
torch's by float32 rounding.
"""

import math

import numba
import numpy as np
from numba import njit, prange

# Feed-forward activations the step computes (transformers' names for them).
RELU, GELU_TANH, GELU = 0, 1, 2
ACTIVATIONS = {"ReLU": RELU, "NewGELUActivation": GELU_TANH, "GELUTanh": GELU_TANH,
               "PytorchGELUTanh": GELU_TANH, "FastGELUActivation": GELU_TANH, "GELUActivation": GELU}

# Sums may be reordered (vector lanes) and multiply-adds fused: float32 rounding. Not
# the flags that assume no infinities (padding masks and softmax's running maximum use
# them) nor approximate functions (exp, tanh, erf stay libm's).
REORDER = {"reassoc", "contract", "nsz", "arcp"}


def threads_start_quickly() -> bool:
    """Whether numba's threads start a parallel region in about a microsecond (its OpenMP
    or TBB layer). Without either (no libgomp, as on macOS without libomp) numba runs its
    own workqueue, about 100 us a region: a step's hundred regions then cost more than
    the torch loop, so the decoder does not use this step there."""
    one = np.ones(2, np.float32)
    product(np.ones((2, 2), np.float32), one, one, np.empty(2, np.float32))  # starts numba's threads
    return numba.threading_layer() in ("omp", "tbb")


@njit(fastmath=REORDER, cache=True, nogil=True, inline="always")
def _row_dot(weight, scale, row, x):
    """scale[row] * (weight[row] . x), the dot product summed in vector lanes (REORDER
    lets LLVM reorder the sum); float32 whatever the weight's type."""
    total = np.float32(0.0)
    for column in range(weight.shape[1]):
        total += np.float32(weight[row, column]) * x[column]
    return total * scale[row]


@njit(parallel=True, fastmath=REORDER, cache=True, nogil=True)
def product(weight, scale, x, out):
    """out = scale * (weight @ x) for one row x, rows split between numba's threads."""
    for row in prange(weight.shape[0]):
        out[row] = _row_dot(weight, scale, row, x)


@njit(fastmath=REORDER, cache=True, nogil=True)
def _rms_norm(x, weight, eps):
    """T5's norm: no mean, no bias, x divided by its root mean square."""
    variance = np.float32(0.0)
    for i in range(x.shape[0]):
        variance += x[i] * x[i]
    inverse = np.float32(1.0) / np.sqrt(variance / np.float32(x.shape[0]) + eps)
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = weight[i] * (x[i] * inverse)
    return out


@njit(parallel=True, fastmath=REORDER, cache=True, nogil=True)
def _attend(q, keys, values, count, bias, heads, d_kv, out):
    """T5 attention of one query over the first `count` keys of each head: no 1/sqrt(d)
    scale, `bias[h, t]` added to the scores (position bias or padding mask). Heads are
    split between threads."""
    for h in prange(heads):
        scores = np.empty(count, np.float32)
        largest = -np.inf
        for t in range(count):
            s = bias[h, t]
            for d in range(d_kv):
                s += q[h * d_kv + d] * keys[h, t, d]
            scores[t] = s
            largest = max(largest, s)
        total = np.float32(0.0)
        for t in range(count):
            scores[t] = np.exp(scores[t] - largest)
            total += scores[t]
        for d in range(d_kv):
            acc = np.float32(0.0)
            for t in range(count):
                acc += scores[t] * values[h, t, d]
            out[h * d_kv + d] = acc / total


@njit(parallel=True, fastmath=REORDER, cache=True, nogil=True)
def _gated_product(weight, scale, gate_weight, gate_scale, x, activation, gated, out):
    """The feed-forward's inner state: activation(weight @ x), times gate_weight @ x when
    `gated` (T5's gated GELU), rows split between threads."""
    for row in prange(weight.shape[0]):
        state = _activate(_row_dot(weight, scale, row, x), activation)
        if gated:
            state *= _row_dot(gate_weight, gate_scale, row, x)
        out[row] = state


@njit(fastmath=REORDER, cache=True, nogil=True)
def _activate(x, kind):
    if kind == RELU:
        return max(x, np.float32(0.0))
    if kind == GELU_TANH:
        return np.float32(0.5) * x * (np.float32(1.0) + np.tanh(np.float32(0.7978845608028654) * (x + np.float32(0.044715) * x * x * x)))
    return np.float32(0.5) * x * (np.float32(1.0) + np.float32(math.erf(x * np.float32(0.7071067811865476))))


@njit(cache=True, nogil=True)
def decoder_step(hidden, step, weights, scales, norms, final_norm, keys, values, position_bias,
                 cross_keys, cross_values, cross_bias, heads, d_kv, eps, activation, gated):
    """The final hidden state (normalized, before the output layer) after `hidden`, the
    embedding of the token at position `step`, passes every layer; writes that position's
    self-attention keys and values into `keys`/`values` (layers, heads, max length, d_kv).

    weights[kind][layer] and scales[kind][layer], kinds in order: q, k, v, self-attention
    output, cross-attention q, cross-attention output, feed-forward input (wi or wi_0),
    its gate's linear half (wi_1; unused unless `gated`), feed-forward output.
    norms[layer, i]: the self-attention, cross-attention and feed-forward norm weights.
    position_bias (heads, max length, max length); cross_keys/values[layer] (heads,
    prompt tokens, d_kv); cross_bias (heads, prompt tokens): 0 or a padding mask.
    """
    inner = heads * d_kv
    q, k, v = np.empty(inner, np.float32), np.empty(inner, np.float32), np.empty(inner, np.float32)
    context = np.empty(inner, np.float32)
    delta = np.empty(hidden.shape[0], np.float32)
    bias = position_bias[:, step, :]
    hidden = hidden.copy()
    for layer in range(len(weights[0])):
        x = _rms_norm(hidden, norms[layer, 0], eps)
        product(weights[0][layer], scales[0][layer], x, q)
        product(weights[1][layer], scales[1][layer], x, k)
        product(weights[2][layer], scales[2][layer], x, v)
        for h in range(heads):
            keys[layer, h, step, :] = k[h * d_kv : (h + 1) * d_kv]
            values[layer, h, step, :] = v[h * d_kv : (h + 1) * d_kv]
        _attend(q, keys[layer], values[layer], step + 1, bias, heads, d_kv, context)
        product(weights[3][layer], scales[3][layer], context, delta)
        hidden += delta

        x = _rms_norm(hidden, norms[layer, 1], eps)
        product(weights[4][layer], scales[4][layer], x, q)
        _attend(q, cross_keys[layer], cross_values[layer], cross_keys[layer].shape[1], cross_bias, heads, d_kv, context)
        product(weights[5][layer], scales[5][layer], context, delta)
        hidden += delta

        x = _rms_norm(hidden, norms[layer, 2], eps)
        state = np.empty(weights[6][layer].shape[0], np.float32)
        _gated_product(weights[6][layer], scales[6][layer], weights[7][layer], scales[7][layer], x, activation, gated, state)
        product(weights[8][layer], scales[8][layer], state, delta)
        hidden += delta
    return _rms_norm(hidden, final_norm, eps)
